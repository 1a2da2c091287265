"""The AI run state the AI panel renders (progress, ETA text, methods), tested without Qt: the module and
its dependencies are imported with PySide6/pyqtgraph blocked, and the rules are checked on the real objects."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from viewer.state import AIProgress, AIRunState, AISettings


def test_ai_run_state_imports_without_qt_or_torch() -> None:
    code = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in {'PySide6', 'pyqtgraph', 'shiboken6', 'superqt', 'torch'}:
                    raise ImportError('blocked for this test: ' + name)
                return None
        sys.meta_path.insert(0, Block())
        from viewer.state.ai import AIRunState
        s = AIRunState()
        s.set_progress(3, 10, 12.0, True)
        print(s.progress.eta_text, '|', s.progress.count_format)
        assert not any(m.split('.')[0] in {'PySide6', 'pyqtgraph', 'torch'} for m in sys.modules)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ETA ~12 s | %v / %m slices"


def test_progress_text_rules_running_done_cancelled_and_no_run() -> None:
    assert AIProgress().eta_text == "" and AIProgress().count_format == ""  # nothing ran on this series
    assert AIProgress(2, 10, None, True).eta_text == "ETA estimating..."  # no slice timed yet
    assert AIProgress(2, 10, 45.0, True).eta_text == "ETA ~45 s"
    assert AIProgress(2, 10, 600.0, True).eta_text == "ETA ~10 min"
    assert AIProgress(10, 10, None, False).eta_text == "done"
    assert AIProgress(4, 10, None, False).eta_text == "cancelled"  # stopped before every slice was in
    assert AIProgress(4, 10, None, False).count_format == "%v / %m slices"


def test_progress_events_only_when_what_is_shown_changes() -> None:
    run = AIRunState()
    seen: list[AIProgress] = []
    run.progressChanged.connect(seen.append)
    run.set_progress(0, 0, None, False)  # the initial state: nothing to redraw
    assert seen == []
    run.set_progress(0, 8, None, True)
    run.set_progress(0, 8, None, True)  # a refresh with nothing new
    run.set_progress(3, 8, 5.0, True)
    run.set_progress(8, 8, 0.0, False)
    run.set_progress(8, 8, 3.0, False)  # the ETA of a finished run is not shown: no event
    assert seen == [AIProgress(0, 8, None, True), AIProgress(3, 8, 5.0, True), AIProgress(8, 8, None, False)]
    assert [p.eta_text for p in seen] == ["ETA estimating...", "ETA ~5 s", "done"]
    run.set_progress(0, 0, None, False)  # a new series without results: the count and "done" go away
    assert seen[-1] == AIProgress() and seen[-1].eta_text == ""


def test_methods_event_carries_the_method_in_force() -> None:
    run = AIRunState()
    seen: list[tuple[list[str], str]] = []
    run.methodsChanged.connect(lambda methods, current: seen.append((methods, current)))
    run.set_methods(["gradcam"], "gradcam")
    run.set_methods(["gradcam"], "gradcam")  # a model reloaded with the same methods: nothing to redraw
    run.set_methods(["gradcam", "occlusion"], "occlusion")
    assert seen == [(["gradcam"], "gradcam"), (["gradcam", "occlusion"], "occlusion")]


def test_device_and_status_events_the_panel_follows() -> None:
    settings = AISettings()
    devices: list[str] = []
    statuses: list[str] = []
    settings.deviceChanged.connect(devices.append)
    settings.statusChanged.connect(statuses.append)
    settings.set_device("cuda:0")
    settings.set_device("cuda:0")
    settings.set_device("cpu")  # e.g. the out-of-memory fallback reported by a batch
    settings.set_status("Cached results")
    settings.set_status("Cached results")  # one line per event, not one per batch
    settings.set_status("")  # a new series clears it
    assert devices == ["cuda:0", "cpu"]
    assert statuses == ["Cached results", ""]

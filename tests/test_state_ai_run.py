"""The AI run state the AI panel renders (progress, ETA text, methods), tested without Qt: the module and
its dependencies are imported with PySide6/pyqtgraph blocked, and the rules are checked on the real objects."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np

from viewer.ai import JobScheduler, SeriesResults
from viewer.state import AIProgress, AIRunState, AISettings
from viewer.state.ai import finding_text, findings_at, no_finding_text, ood_caption


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


def _results(scores: list[float], n: int = 6) -> SeriesResults:
    key = JobScheduler().start("s", "sha", "gradcam", n)
    res = SeriesResults(key, ["nodule"], (n, 2, 2), {"nodule": 0.5})
    if scores:
        res.add(list(range(len(scores))), np.array([[v] for v in scores]), {})
    return res


def test_findings_follow_the_threshold_in_force_strongest_first() -> None:
    res = _results([0.1, 0.8, 0.6, 0.2, 0.9])
    assert [f.peak_slice for f in findings_at(res, {"nodule": 0.5})] == [4, 1]  # runs {1,2} and {4}
    assert res.thresholds["nodule"] == 0.5
    found = findings_at(res, {"nodule": 0.85})
    assert [f.peak_slice for f in found] == [4] and res.thresholds["nodule"] == 0.85
    assert findings_at(res, {"other": 0.01}) == found  # a label the results lack changes nothing
    high = findings_at(res, {"nodule": 0.55})
    assert [finding_text(f) for f in high] == ["nodule: p=0.90 at Im 5", "nodule: p=0.80 at Im 2 (Im 2-3)"]


def test_no_finding_line_only_when_slices_ran_and_none_is_above_threshold() -> None:
    quiet = _results([0.1, 0.2])
    assert no_finding_text(quiet, findings_at(quiet, {"nodule": 0.42})) == \
        "No finding so far (2/6 slices; nodule p \u2265 0.42)"
    assert no_finding_text(None, []) == ""  # no results: no line
    assert no_finding_text(_results([]), []) == ""  # nothing ran yet: no claim either way
    loud = _results([0.9])
    assert no_finding_text(loud, findings_at(loud, {"nodule": 0.5})) == ""


def test_results_ood_and_cursor_events_carry_what_the_panel_draws() -> None:
    run = AIRunState()
    got: list[tuple[object, list[int]]] = []
    run.resultsChanged.connect(lambda r, fs: got.append((r, [f.peak_slice for f in fs])))
    res = _results([0.1, 0.8, 0.6])
    run.set_results(res, {"nodule": 0.7})
    res.add([3], np.array([[0.95]]), {})  # more slices land in place: the next refresh redraws them
    run.set_results(res, {"nodule": 0.7})
    run.set_results(None, {})
    assert got == [(res, [1]), (res, [3, 1]), (None, [])]
    assert run.results_version == 3 and run.findings == [] and run.results is None
    ood: list[tuple[object, object, str]] = []
    run.oodChanged.connect(lambda d, t, s: ood.append((d, t, s)))
    run.set_ood(None, None, "")
    assert ood == [(None, None, "")] and run.ood == (None, None, "")
    assert ood_caption("") == "Unlike the training data (OOD / threshold)"
    assert ood_caption("2 of 5 slices above 1") == "Unlike the training data (OOD / threshold): 2 of 5 slices above 1"
    cursor: list[int] = []
    run.currentSliceChanged.connect(cursor.append)
    run.set_current_slice(4)
    run.set_current_slice(4)  # a new series at the same index still moves its cursor
    assert cursor == [4, 4] and run.current_slice == 4


def test_status_line_rules_notices_once_per_run_and_other_lines_replace_them() -> None:
    settings = AISettings()
    lines: list[str] = []
    settings.statusChanged.connect(lines.append)
    assert settings.notice("GPU out of memory: running on the CPU")
    assert not settings.notice("GPU out of memory: running on the CPU")  # the next batch says it again
    settings.set_status("model failed: boom")  # a failure replaces the notice ...
    assert not settings.notice("GPU out of memory: running on the CPU")  # ... which is not announced again
    assert settings.notice("slow disk")  # a different notice replaces the line
    assert settings.status == "slow disk"
    settings.new_run()  # a new run: a clean line, and its notices count again
    assert settings.status == ""
    assert settings.notice("GPU out of memory: running on the CPU")
    assert lines == ["GPU out of memory: running on the CPU", "model failed: boom", "slow disk", "",
                     "GPU out of memory: running on the CPU"]

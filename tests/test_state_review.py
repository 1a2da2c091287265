"""The review's decisions without Qt (viewer.state.review_control / review_viewer) on real review stores
(SQLite, and PostgreSQL from tests/support/postgres.py) and real generated DICOM series: which study is open
and which comes next, what a flag records (slice, model, method, threshold in force, scope note, region), the
status line that belongs to its study, the reviewer's name and the store switch kept in the settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tests.support.review_series import make_ct_series
from viewer.ai.results import SeriesResults
from viewer.ai.scheduler import RunKey
from viewer.dicom import load_volume, scan
from viewer.display.measure import MeasurementRecord
from viewer.display.settings import ViewerSettings, load_settings
from viewer.review import ReviewStore, Verdict
from viewer.state import AIRunState, AISettings, SessionState
from viewer.state.review_control import ReviewControl
from viewer.state.review_viewer import StudyTarget, ViewerReview

SHA = "cd" * 32


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.xdist_group("postgres"))])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh review store of each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "review.sqlite3")
    server = request.getfixturevalue("postgres_server")
    return str(server.url(server.new_database()))


@pytest.fixture()
def two_studies(tmp_path: Path) -> tuple[Path, Path]:
    make_ct_series(tmp_path / "a", 3)
    make_ct_series(tmp_path / "b", 5)
    return tmp_path / "a", tmp_path / "b"


class Viewer:
    """The viewer's Qt-free state as the window holds it: a session over the scanned stacks, the AI's states."""

    def __init__(self, store: ReviewStore, *folders: Path, settings: ViewerSettings | None = None) -> None:
        result = scan([str(f) for f in folders])
        assert not result.errors
        self.session = SessionState(settings)
        self.session.set_stacks(result.stacks)
        self.ai, self.ai_run = AISettings("gradcam++"), AIRunState()
        self.control = ReviewControl(store)
        self.review = ViewerReview(self.control, self.session, self.ai, self.ai_run)

    def show(self, stack: Any, k: int = 0) -> None:
        self.session.choose(stack.stack_id)
        series = self.session.new_series(load_volume(stack))
        series.go_to(np.array([0.0, 0.0, float(k)]))
        assert self.review.series_shown(stack.stack_id) is None
        self.review.update_context()

    def stack_of(self, folder: Path) -> Any:
        return next(s for s in self.session.stacks.values() if Path(s.files[0]).parent == folder)


@pytest.fixture()
def viewer(store_location: str, two_studies: tuple[Path, Path]) -> Iterator[Viewer]:
    with ReviewStore(store_location) as store:
        yield Viewer(store, *two_studies)


def test_next_on_the_last_study_says_so_and_the_status_line_stays_with_its_study(
    viewer: Viewer, two_studies: tuple[Path, Path],
) -> None:
    viewer.review.sync_worklist()  # the open studies, in the order the scan listed them
    state, control = viewer.control.state, viewer.control
    order = [e.study_uid for e in state.worklist.entries]
    a, b = sorted((viewer.stack_of(f) for f in two_studies), key=lambda s: order.index(s.info.study_uid))
    viewer.show(a, 1)
    assert order == [a.info.study_uid, b.info.study_uid] and b.n_slices in (3, 5)
    assert state.worklist.progress_text(control.current_study) == "Study 1 of 2 · 0 done"
    assert state.worklist.previous is None and state.worklist.next == b.info.study_uid
    flag_id = control.add_flag(Verdict.CORRECT, "nodule")
    assert flag_id is not None and state.status == f"Saved: Correct on Im 2 ({flag_id[:8]}) · whole slice"
    assert [f.id for f in state.flags] == [flag_id]
    statuses: list[str] = []
    state.statusChanged.connect(lambda text, _error: statuses.append(text))
    assert control.step(1) == b.info.study_uid  # Next: the panel asks the viewer to show it
    assert state.status == "" and state.context is None and state.flags == ()  # "Saved ... Im 2" went with study a
    viewer.session.choose(b.stack_id)  # the window switches: nothing shown until b's first slice decodes
    assert control.add_flag("fp") is None and state.status == "No image open: nothing to flag." and state.status_error
    viewer.show(b, 2)
    assert state.context is not None and state.context.slice_index == 2
    assert state.worklist.next is None and state.worklist.progress_text(control.current_study) == "Study 2 of 2 · 0 done"
    assert control.step(1) is None  # Next on the last study does not pass silently
    assert state.status == "This is the last study on the worklist (2 of 2)"
    assert control.mark_done() and state.worklist.done == 1 and state.status == "Study marked done"
    assert control.step(-1) == a.info.study_uid and state.status == ""
    assert statuses[0] == "" and "This is the last study on the worklist (2 of 2)" in statuses


def test_flag_records_the_slice_and_the_model_threshold_and_scope_of_the_run_on_the_shown_series(
    viewer: Viewer, two_studies: tuple[Path, Path],
) -> None:
    a, b = (viewer.stack_of(f) for f in two_studies)
    card = SimpleNamespace(name="chest-nodule-demo", version="2.1.0", labels=("nodule", "effusion"),
                           weights=SimpleNamespace(sha256=SHA))
    viewer.ai.set_model("chest-nodule-demo", {"nodule": 0.4, "effusion": 0.7}, card=card)
    viewer.show(b, 3)
    control, review, store = viewer.control, viewer.review, viewer.control.store
    assert control.state.labels == ("nodule", "effusion")  # the model's labels are offered
    flag = store.get_flag(control.add_flag("false_positive", "nodule") or "")
    assert flag.slice_index == 3 and flag.sop_instance_uids == (b.sop_instance_uids[3],)
    assert flag.model.name == "" and flag.threshold is None and flag.method == ""  # nothing ran on b

    def results_on(stack: Any) -> SeriesResults:
        return SeriesResults(RunKey(stack.stack_id, SHA, "gradcam++", 0), list(card.labels),
                             (stack.n_slices, 4, 4))

    viewer.ai_run.set_results(results_on(a), viewer.ai.thresholds)  # the run belongs to another series
    assert not review.model_ran()
    assert store.get_flag(control.add_flag("correct", "nodule") or "").model.name == ""
    viewer.ai_run.set_results(results_on(b), viewer.ai.thresholds)
    viewer.ai.set_threshold("effusion", 0.55)  # the reviewer moved the threshold in the AI panel
    flag = store.get_flag(control.add_flag("missed", "effusion") or "")
    assert (flag.model.name, flag.model.version, flag.model.sha256) == ("chest-nodule-demo", "2.1.0", SHA)
    assert flag.method == "gradcam++" and flag.threshold == pytest.approx(0.55) and flag.scope_note == ""
    assert store.get_flag(control.add_flag("correct", "not a label") or "").threshold is None
    viewer.session.series.set_banner("outside intended use: Body part HEAD")  # a run forced by hand
    flag = store.get_flag(control.add_flag("uncertain", "nodule") or "")
    assert flag.scope_note == "outside intended use: Body part HEAD" and flag.threshold == pytest.approx(0.4)
    # an ROI on the slice becomes the region; one on another slice does not
    vol = viewer.session.series.volume
    sx, sy = float(vol.spacing[0]), float(vol.spacing[1])
    viewer.session.series.add_measurement(MeasurementRecord("rect", "acquisition", 2, [], pos=(0, 0), size=(sx, sy)))
    flag_id = control.add_flag("missed", "nodule")
    assert store.get_flag(flag_id or "").region is None and control.state.status.endswith("· whole slice")
    viewer.session.series.add_measurement(MeasurementRecord("rect", "acquisition", 3, [], pos=(2 * sx, 3 * sy),
                                                            size=(4 * sx, 2 * sy)))
    flag = store.get_flag(control.add_flag("missed", "nodule") or "")
    assert flag.region is not None and np.allclose(flag.region.points_px, [(1.5, 2.5), (5.5, 4.5)])
    assert control.state.status.endswith("· rectangle region")


def test_a_flag_edited_by_someone_else_is_not_overwritten(viewer: Viewer, two_studies: tuple[Path, Path]) -> None:
    a = viewer.stack_of(two_studies[0])
    viewer.show(a, 0)
    control = viewer.control
    control.set_reviewer("Ann")
    flag_id = control.add_flag("false_positive", "nodule", "first look")
    assert flag_id is not None and control.state.flags[0].reviewer == "Ann"
    with ReviewStore(control.store.location if control.store.backend == "sqlite" else _url(control.store)) as theirs:
        theirs.edit_flag(flag_id, comment="a vessel", actor="Bob")
    assert not control.edit_flag(flag_id, control.state.flags[0].version, comment="a nodule")
    assert control.state.status.startswith("NOT saved") and control.state.status_error
    assert control.state.flags[0].comment == "a vessel"  # the list now shows Bob's version
    assert control.edit_flag(flag_id, control.state.flags[0].version, comment="a nodule")
    assert [h.actor for h in control.store.history(flag_id)] == ["Ann", "Bob", "Ann"]


def _url(store: ReviewStore) -> str:
    return str(getattr(store, "url", store.location))


def test_a_requested_study_is_shown_from_the_open_set_else_opened_from_its_folder(
    tmp_path: Path, two_studies: tuple[Path, Path],
) -> None:
    a_folder, b_folder = two_studies
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        viewer = Viewer(store, a_folder)
        a = viewer.stack_of(a_folder)
        b_uid = make_ct_series(tmp_path / "c", 2)[0].StudyInstanceUID  # on the worklist from an earlier session
        store.add_study(b_uid, description="earlier", source_path=str(tmp_path / "c"))
        store.add_study("1.2.3.4", description="moved", source_path=str(tmp_path / "gone"))
        viewer.show(a)
        review = viewer.review
        assert review.study_target(a.info.study_uid) == StudyTarget(stack_id="")  # already shown
        assert review.study_target("1.2.3.4") is None
        assert viewer.control.state.status == f"Study 1.2.3.4 is not open and cannot be found ({tmp_path / 'gone'} is gone)"
        assert review.study_target(b_uid) == StudyTarget(path=str(tmp_path / "c"))
        # the folder is opened (here: scanned into the session); its first series is then shown
        result = scan([str(tmp_path / "c"), str(a_folder)])
        viewer.session.set_stacks(result.stacks)
        c = next(s for s in result.stacks if s.info.study_uid == b_uid)
        a_again = next(s for s in result.stacks if s.info.study_uid == a.info.study_uid)
        viewer.session.choose(a_again.stack_id)
        viewer.session.new_series(load_volume(a_again))
        assert review.series_shown(a_again.stack_id) == StudyTarget(stack_id=c.stack_id)  # the pending study wins
        assert review.series_shown(a_again.stack_id) is None  # once


def test_reviewer_name_and_store_switch_are_kept_in_the_settings(
    tmp_path: Path, two_studies: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RADSCOPE_REVIEWER", raising=False)
    first = ReviewStore(tmp_path / "first.sqlite3")
    viewer = Viewer(first, *two_studies, settings=load_settings())
    a = viewer.stack_of(two_studies[0])
    viewer.show(a, 2)
    viewer.review.set_reviewer("  Dr. Ada ")
    assert viewer.control.state.reviewer == "Dr. Ada" and load_settings().reviewer == "Dr. Ada"
    assert viewer.control.store.get_flag(viewer.control.add_flag("correct") or "").reviewer == "Dr. Ada"
    empty = tmp_path / "empty.sqlite3"
    empty.write_bytes(b"")
    assert not viewer.review.use_store(str(empty))  # refused, said, the store stays
    assert viewer.control.state.status.startswith("Review store not changed") and "0 bytes" in viewer.control.state.status
    assert viewer.control.store is first
    swapped: list[Any] = []
    viewer.control.state.storeChanged.connect(swapped.append)
    second = tmp_path / "second.sqlite3"
    assert viewer.review.use_store(str(second))
    store = viewer.control.store
    assert swapped == [store] and store.location == str(second) and load_settings().review_store == str(second)
    assert {e.study_uid for e in store.worklist()} == {s.info.study_uid for s in viewer.session.stacks.values()}
    assert viewer.control.state.flags == ()  # the new store's flags of the study: none yet
    with pytest.raises(Exception):  # noqa: B017 (the old connection is closed: any use fails)
        first.flags()
    again = Viewer(store, *two_studies, settings=load_settings())  # the next window starts with the name
    assert again.control.state.reviewer == "Dr. Ada"
    store.close()


@pytest.mark.xdist_group("postgres")
def test_a_flag_the_team_store_cannot_take_is_kept_on_this_computer_and_sent_later(
    postgres_server: Any, radscope_home: Path,
) -> None:
    """ReviewControl with its Qt-free link (DirectLink): the real local outbox under RADSCOPE_HOME."""
    from tests.support.review_stores import context
    from viewer.review.outbox import Outbox

    url = postgres_server.url(postgres_server.new_database())
    with ReviewStore(url, timeout_s=2.0) as store:
        control = ReviewControl(store)
        control.set_reviewer("Ann")
        control.set_context(context(0))
        postgres_server.stop("fast")
        try:
            assert control.add_flag("missed", "nodule", "6 mm") is None  # nothing acknowledged: no id
            status = control.state.status
            assert control.state.status_error and control.kept_id is not None
            assert "cannot be reached" in status and "kept on this computer (1 waiting)" in status
        finally:
            postgres_server.start()
        outbox = Outbox()
        assert outbox.path == radscope_home / "review" / "outbox.sqlite3"
        try:
            assert outbox.drain(store).sent == [control.kept_id]
        finally:
            outbox.close()
        control.refresh()
        flag = store.get_flag(control.kept_id)
        assert (flag.verdict, flag.comment, flag.reviewer) == (Verdict.FALSE_NEGATIVE, "6 mm", "Ann")
        assert [f.id for f in control.state.flags] == [control.kept_id]

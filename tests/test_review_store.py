"""The review store: flags, edits with history, tombstones, worklist, migrations, errors."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.test_review_support import context_of, make_ct_series
from viewer.review import Region, ReviewStore, ReviewStoreError, Verdict, default_reviewer
from viewer.review.schema import CURRENT_VERSION, MIGRATIONS


@pytest.fixture()
def series(tmp_path: Path) -> list:
    return make_ct_series(tmp_path / "ct", 3)


def test_default_path_is_under_radscope_home(radscope_home: Path) -> None:
    with ReviewStore() as store:
        assert store.path == radscope_home / "review" / "review.sqlite3"
        assert store.path.exists()


def test_default_reviewer_env_then_settings_then_login(radscope_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass
    import json

    monkeypatch.delenv("RADSCOPE_REVIEWER", raising=False)
    assert default_reviewer() == getpass.getuser()
    (radscope_home / "viewer-settings.json").write_text(json.dumps({"layout": "1x1", "reviewer": "Dr Who"}))
    assert default_reviewer() == "Dr Who"
    monkeypatch.setenv("RADSCOPE_REVIEWER", "Ann")
    assert default_reviewer() == "Ann"


def test_store_is_wal_and_fully_synchronous(tmp_path: Path) -> None:
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        assert store.pragma("journal_mode") == "wal"
        assert store.pragma("synchronous") == 2  # FULL
        assert store.schema_version == CURRENT_VERSION


def test_flag_records_image_model_and_patient_space(tmp_path: Path, series: list) -> None:
    ds = series[1]
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        region = Region.make("rectangle", [(10, 20), (30, 40)])
        flag_id = store.add_flag(context_of(ds, 1), "missed", "nodule", region=region, comment="left apex",
                                 reviewer="dr a")
        flag = store.get_flag(flag_id)
    assert flag.verdict is Verdict.FALSE_NEGATIVE
    assert flag.sop_instance_uids == (ds.SOPInstanceUID,)
    assert flag.sop_class_uid == ds.SOPClassUID
    assert (flag.study_uid, flag.series_uid, flag.slice_index) == (ds.StudyInstanceUID, ds.SeriesInstanceUID, 1)
    assert flag.model.name == "chest-nodule-demo" and flag.method == "gradcam" and flag.threshold == 0.5
    assert flag.headers.manufacturer == "GE MEDICAL SYSTEMS" and flag.headers.age_band == "40-49"
    assert flag.headers.kvp == "120" and flag.headers.patient_sex == "F" and flag.headers.body_part == "CHEST"
    assert flag.frame_of_reference_uid == ds.FrameOfReferenceUID
    assert flag.created.endswith("Z") and flag.reviewer == "dr a" and flag.comment == "left apex"
    # pixel (10, 20) -> IPP + 10 * col spacing along x + 20 * row spacing along y
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    sp = float(ds.PixelSpacing[0])
    assert flag.region is not None
    np.testing.assert_allclose(flag.region.points_lps[0], ipp + [10 * sp, 20 * sp, 0], atol=1e-9)
    np.testing.assert_allclose(flag.region.points_lps[1], ipp + [30 * sp, 40 * sp, 0], atol=1e-9)


def test_bad_verdict_lists_allowed(tmp_path: Path, series: list) -> None:
    with ReviewStore(tmp_path / "r.sqlite3") as store, pytest.raises(ValueError, match="allowed: correct, false_positive"):
        store.add_flag(context_of(series[0], 0), "wrong", "nodule")


def test_edit_and_delete_keep_history(tmp_path: Path, series: list) -> None:
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        fid = store.add_flag(context_of(series[0], 0), "correct", "nodule", reviewer="a")
        store.edit_flag(fid, verdict="false_positive", comment="vessel", actor="b")
        store.delete_flag(fid, actor="b")
        assert store.flags() == []
        tomb = store.get_flag(fid)
        assert tomb.deleted and tomb.verdict is Verdict.FALSE_POSITIVE and tomb.reviewer == "a"
        assert [f.id for f in store.flags(include_deleted=True)] == [fid]
        hist = store.history(fid)
        assert [h.action for h in hist] == ["create", "edit", "delete"]
        assert [h.snapshot["verdict"] for h in hist] == ["correct", "false_positive", "false_positive"]
        assert [h.actor for h in hist] == ["a", "b", "b"]
        with pytest.raises(ReviewStoreError, match="deleted"):
            store.edit_flag(fid, comment="again")
        # the history and the tombstone cannot be rewritten, even with raw SQL
        raw = sqlite3.connect(store.path)
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("DELETE FROM flag_history")
        with pytest.raises(sqlite3.DatabaseError, match="never deleted"):
            raw.execute("DELETE FROM flag")
        raw.close()


def test_worklist_status_navigation_and_progress(tmp_path: Path) -> None:
    studies = [make_ct_series(tmp_path / f"s{i}", 1) for i in range(3)]
    uids = [s[0].StudyInstanceUID for s in studies]
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        for i, uid in enumerate(uids):
            store.add_study(uid, description=f"study {i}", source_path=str(tmp_path / f"s{i}"))
        assert [e.status for e in store.worklist()] == ["not_started"] * 3
        store.add_flag(context_of(studies[1][0], 0), "correct", "nodule")
        assert [e.status for e in store.worklist()] == ["not_started", "in_progress", "not_started"]
        assert [e.n_flags for e in store.worklist()] == [0, 1, 0]
        store.set_status(uids[0], "done")
        store.add_study(uids[0], description="renamed")  # re-adding keeps place and status
        assert store.worklist()[0].status == "done" and store.worklist()[0].description == "renamed"
        assert store.progress() == (1, 3)
        assert store.neighbour(None) == uids[0]
        assert store.neighbour(uids[0]) == uids[1]
        assert store.neighbour(uids[2]) is None
        assert store.neighbour(uids[1], -1) == uids[0]
        assert store.neighbour(uids[1], -1, skip_done=True) is None
        assert store.neighbour(None, skip_done=True) == uids[1]
        with pytest.raises(ValueError, match="allowed"):
            store.set_status(uids[0], "finished")  # type: ignore[arg-type]


def test_migration_from_v1_keeps_flags_and_adds_history(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS[0](conn)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO flag (id, study_uid, series_uid, slice_index, sop_instance_uids, verdict, label, region, "
        "reviewer, created, updated, model_name, model_version) VALUES "
        "('f1', '1.2.3', '1.2.3.4', 7, '[\"1.2.3.4.5\"]', 'uncertain', 'nodule', "
        "'{\"kind\": \"point\", \"points_px\": [[3, 4]]}', 'old reviewer', '2025-01-01T00:00:00.000Z', "
        "'2025-01-01T00:00:00.000Z', 'm', '0.9')"
    )
    conn.close()
    with ReviewStore(path) as store:
        assert store.schema_version == CURRENT_VERSION
        flag = store.get_flag("f1")
        assert (flag.slice_index, flag.verdict, flag.model.version) == (7, Verdict.UNCERTAIN, "0.9")
        assert flag.region == Region("point", ((3.0, 4.0),)) and not flag.deleted
        assert [h.action for h in store.history("f1")] == ["create"]
        assert [(e.study_uid, e.status) for e in store.worklist()] == [("1.2.3", "in_progress")]
        store.edit_flag("f1", verdict="correct")
        assert [h.action for h in store.history("f1")] == ["create", "edit"]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {CURRENT_VERSION + 1}")
    conn.close()
    with pytest.raises(ReviewStoreError, match="newer"):
        ReviewStore(path)


def test_not_a_database_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ReviewStoreError, match="junk.sqlite3"):
        ReviewStore(path)


def test_unwritable_location_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ReviewStoreError, match="file/review.sqlite3"):
        ReviewStore(blocker / "review.sqlite3")


def test_disk_full_gives_clear_error_and_no_partial_flag(tmp_path: Path, series: list) -> None:
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        kept = store.add_flag(context_of(series[0], 0), "correct", "nodule")
        pages = store.pragma("page_count")
        store._conn.execute(f"PRAGMA max_page_count = {pages}")  # the "disk" is now full
        with pytest.raises(ReviewStoreError, match="r.sqlite3.*full"):
            store.add_flag(context_of(series[1], 1), "false_positive", "nodule", comment="x" * 200_000)
        assert [f.id for f in store.flags(include_deleted=True)] == [kept]
        assert len(store.history(kept)) == 1
        assert store._conn.execute("SELECT COUNT(*) FROM flag_history").fetchone()[0] == 1
        assert store.pragma("integrity_check") == "ok"


def test_read_only_store_gives_clear_error_and_no_partial_flag(tmp_path: Path, series: list) -> None:
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        kept = store.add_flag(context_of(series[0], 0), "correct", "nodule")
        store._conn.execute("PRAGMA query_only = ON")  # what a read-only file gives SQLite
        with pytest.raises(ReviewStoreError, match=r"cannot save the flag in review store .*r.sqlite3.*readonly"):
            store.add_flag(context_of(series[1], 1), "false_positive", "nodule")
        with pytest.raises(ReviewStoreError, match="readonly"):
            store.delete_flag(kept)
        assert [f.id for f in store.flags(include_deleted=True)] == [kept] and not store.get_flag(kept).deleted


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_folder_is_named(tmp_path: Path, series: list) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    ReviewStore(folder / "r.sqlite3").close()
    for p in (folder / "r.sqlite3", folder):
        p.chmod(0o555)
    try:
        with pytest.raises(ReviewStoreError, match="r.sqlite3"):
            with ReviewStore(folder / "r.sqlite3") as store:
                store.add_flag(context_of(series[0], 0), "correct", "nodule")
    finally:
        folder.chmod(0o755)


def test_several_writers_lose_nothing(tmp_path: Path, series: list) -> None:
    path = tmp_path / "r.sqlite3"
    ReviewStore(path).close()
    ids: list[list[str]] = [[] for _ in range(3)]

    def writer(n: int) -> None:
        with ReviewStore(path) as store:
            for k in range(15):
                ids[n].append(store.add_flag(context_of(series[k % 3], k % 3), "uncertain", f"w{n}"))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with ReviewStore(path) as store:
        assert sorted(f.id for f in store.flags()) == sorted(i for part in ids for i in part)
        assert len(store.flags()) == 45

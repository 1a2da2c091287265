"""CSV and JSON export; JSON import round-trips and is idempotent by flag id."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from collections.abc import Iterator

import pytest

from tests.test_review_support import context_of, make_ct_series
from viewer.review import Region, ReviewStore, ReviewStoreError
from viewer.review.tables import CSV_COLUMNS, ImportFileError, export_csv, export_json, import_json


@pytest.fixture()
def filled(tmp_path: Path) -> Iterator[ReviewStore]:
    series = make_ct_series(tmp_path / "ct", 3)
    store = ReviewStore(tmp_path / "a.sqlite3")
    store.add_flag(context_of(series[0], 0), "false_positive", "nodule",
                   region=Region.make("ellipse", [(1, 2), (9, 6)]), comment='says "vessel", twice', reviewer="a")
    fid = store.add_flag(context_of(series[1], 1), "correct", "nodule", reviewer="b")
    store.edit_flag(fid, comment="fine")
    gone = store.add_flag(context_of(series[2], 2), "uncertain", "nodule", reviewer="a")
    store.delete_flag(gone)
    yield store
    store.close()


def test_csv_has_one_row_per_live_flag(filled: ReviewStore, tmp_path: Path) -> None:
    assert export_csv(filled, tmp_path / "out.csv") == 2
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    first = rows[0]
    assert first["verdict"] == "false_positive" and first["comment"] == 'says "vessel", twice'
    assert first["region_kind"] == "ellipse" and json.loads(first["region_px"]) == [[1.0, 2.0], [9.0, 6.0]]
    assert len(json.loads(first["region_lps"])) == 2
    assert first["sop_instance_uids"] == filled.flags()[0].sop_instance_uids[0]
    assert rows[1]["comment"] == "fine" and rows[1]["reviewer"] == "b"


def test_json_round_trip_is_idempotent(filled: ReviewStore, tmp_path: Path) -> None:
    assert export_json(filled, tmp_path / "out.json") == 3
    with ReviewStore(tmp_path / "b.sqlite3") as other:
        assert import_json(other, tmp_path / "out.json") == {"added": 3}
        assert import_json(other, tmp_path / "out.json") == {"unchanged": 3}
        assert other.flags(include_deleted=True) == filled.flags(include_deleted=True)
        assert len(other.flags()) == 2  # the tombstone came across as a tombstone
        sid = filled.flags()[0].study_uid
        assert other.study_header(sid) == filled.study_header(sid)
        assert other.study_header(sid).patient_id == "1CT1"
        # a newer edit in the source store wins on the next import; an older one does not
        fid = filled.flags()[0].id
        filled.edit_flag(fid, verdict="mislocalised")
        export_json(filled, tmp_path / "newer.json")
        assert import_json(other, tmp_path / "newer.json") == {"updated": 1, "unchanged": 2}
        assert other.get_flag(fid).verdict.value == "mislocalised"
        assert [h.action for h in other.history(fid)] == ["import", "import"]
        assert import_json(other, tmp_path / "out.json") == {"unchanged": 3}
        assert other.get_flag(fid).verdict.value == "mislocalised"


def test_import_rejects_foreign_files_by_name(tmp_path: Path) -> None:
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        bad = tmp_path / "other.json"
        bad.write_text('{"flags": []}')
        with pytest.raises(ImportFileError, match="other.json is not a RadScope review export"):
            import_json(store, bad)
        bad.write_text('{"format": "radscope-review/1", "flags": [{"id": "x"}]}')
        with pytest.raises(ImportFileError, match=r"other.json: flags\[0\].verdict: must be a non-empty string"):
            import_json(store, bad)
        with pytest.raises(ImportFileError, match="missing.json"):
            import_json(store, tmp_path / "missing.json")
        assert store.flags(include_deleted=True) == []


def test_csv_free_text_cannot_become_a_formula(tmp_path: Path) -> None:
    series = make_ct_series(tmp_path / "ct", 1)
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        store.add_flag(context_of(series[0], 0), "correct", "nodule", comment='=HYPERLINK("http://x")',
                       reviewer="@ann")
        export_csv(store, tmp_path / "out.csv")
        assert store.flags()[0].comment == '=HYPERLINK("http://x")'  # the store keeps the text as typed
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as f:
        [row] = list(csv.DictReader(f))
    assert row["comment"] == "'=HYPERLINK(\"http://x\")" and row["reviewer"] == "'@ann"


def test_import_is_all_or_nothing(filled: ReviewStore, tmp_path: Path) -> None:
    export_json(filled, tmp_path / "out.json")
    doc = json.loads((tmp_path / "out.json").read_text())
    doc["flags"][-1]["comment"] = "x" * 300_000  # the last flag will not fit on the "disk"
    (tmp_path / "big.json").write_text(json.dumps(doc))
    with ReviewStore(tmp_path / "b.sqlite3") as other:
        other._conn.execute(f"PRAGMA max_page_count = {other.pragma('page_count') + 20}")
        with pytest.raises(ReviewStoreError, match="full"):
            import_json(other, tmp_path / "big.json")
        assert other.flags(include_deleted=True) == [] and other.worklist() == []

"""Flags made on results outside the model's intended use say so (issue 13), in the store, the CSV and
JSON exports, the reviewer's SR (valid for dciodvfy) and everything read back from them."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.dicom3tools import assert_valid
from tests.support.review_series import MODEL, context_of, make_ct_series
from viewer.cli import main
from viewer.review import ReviewStore
from viewer.review.dicom_export import export_dicom
from viewer.review.sr_import import import_sr
from viewer.review.tables import export_json, flags_csv, import_json

NOTE = "outside intended use: Body part HEAD; this model is for CHEST, THORAX"


def _store(tmp_path: Path) -> tuple[ReviewStore, str, str]:
    series = make_ct_series(tmp_path / "ct", 2)
    store = ReviewStore(tmp_path / "r.sqlite3")
    outside = store.add_flag(replace(context_of(series[0], 0, model=MODEL), scope_note=NOTE), "false_positive",
                             "nodule", reviewer="ann", comment="skull base")
    inside = store.add_flag(context_of(series[1], 1, model=MODEL), "correct", "nodule", reviewer="ann")
    return store, outside, inside


def test_the_store_csv_and_json_keep_the_scope_note(tmp_path: Path) -> None:
    store, outside, inside = _store(tmp_path)
    assert store.get_flag(outside).scope_note == NOTE and store.get_flag(inside).scope_note == ""
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(flags_csv(store.flags())))}
    assert rows[outside]["scope_note"] == NOTE and rows[inside]["scope_note"] == ""
    export_json(store, tmp_path / "flags.json")
    with ReviewStore(tmp_path / "other.sqlite3") as other:
        import_json(other, tmp_path / "flags.json")
        assert other.get_flag(outside).scope_note == NOTE and other.get_flag(inside).scope_note == ""
    doc = json.loads((tmp_path / "flags.json").read_text())
    doc["flags"][0]["scope_note"] = 7  # hostile: not text
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with ReviewStore(tmp_path / "third.sqlite3") as third, pytest.raises(ValueError, match="scope_note"):
        import_json(third, tmp_path / "bad.json")
    store.close()


def test_the_reviewers_sr_says_so_and_reads_back(tmp_path: Path) -> None:
    store, outside, inside = _store(tmp_path)
    written = export_dicom(store, tmp_path / "out")
    (sr,) = [f.path for f in written if f.kind == "SR"]
    assert_valid(sr, "Comprehensive3DSR", allowed_warnings=("Unrecognized defined term <99RADSCOPE>",))
    assert NOTE.encode() in sr.read_bytes()  # as a text item a PACS viewer shows, not only in the record
    with ReviewStore(tmp_path / "other.sqlite3") as other:
        import_sr(other, tmp_path / "out")
        back = other.get_flag(outside)
        assert back.scope_note == NOTE and back.comment == "skull base"
        assert other.get_flag(inside).scope_note == ""
    store.close()


def test_review_flag_outside_scope_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_ct_series(tmp_path / "ct", 2)
    db = str(tmp_path / "r.sqlite3")
    assert main(["review", "flag", str(tmp_path / "ct"), "--slice", "0", "--label", "nodule", "--verdict",
                 "false_positive", "--store", db, "--outside-scope", "Body part HEAD; this model is for CHEST, THORAX"]) == 0
    capsys.readouterr()
    assert main(["review", "list", "--store", db, "--json"]) == 0
    (flag,) = json.loads(capsys.readouterr().out)["flags"]
    assert flag["scope_note"] == NOTE

"""Hostile review files (tests/hostile/reviews.py): an import file (JSON export or RadScope SR) with one bad place
gives one error naming the file and that place, and changes nothing; the CSV export survives hostile text (rows, formulas)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hostile import Case, case_ids, cases
from tests.hostile.reviews import base_doc, flag_dict, write
from viewer.cli import main
from viewer.review import ReviewStore
from viewer.review.model import HeaderAttributes, ImageContext, ModelInfo
from viewer.review.sr_import import import_sr
from viewer.review.tables import ImportFileError, export_csv, import_json

REVIEW_CASES = cases("reviews")


@pytest.fixture
def store(tmp_path: Path) -> ReviewStore:
    """A store already holding one flag (flag-0000 as in the base export, older), so 'changes nothing' is tested
    against existing content too."""
    s = ReviewStore(tmp_path / "r.sqlite3")
    doc = base_doc(1)
    doc["flags"][0]["comment"] = "before"
    import_json(s, write(tmp_path, doc, "seed.json"))
    yield s
    s.close()


def _snapshot(store: ReviewStore) -> tuple[object, ...]:
    flags = store.flags(include_deleted=True)
    return (flags, [store.history(f.id) for f in flags], store.worklist())


def test_the_base_export_imports(store: ReviewStore, tmp_path: Path) -> None:
    doc = base_doc()
    doc["flags"][0]["updated"] = "2026-02-01T00:00:00+01:00"  # any zone; stored as UTC with a Z
    assert import_json(store, write(tmp_path, doc)) == {"updated": 1, "added": 2}
    assert store.get_flag("flag-0000").updated == "2026-01-31T23:00:00.000Z"


def _assert_refused_whole(importer: Callable[[ReviewStore, Path], object], hostile: Case, store: ReviewStore,
                          tmp_path: Path) -> None:
    """``importer`` refuses the hostile file with one error line naming the file and the case's words, and the
    store is unchanged."""
    path = hostile.build(tmp_path / "case")
    before = _snapshot(store)
    with pytest.raises(ImportFileError) as info:
        importer(store, path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message, message
    for word in hostile.mentions:
        assert word.lower() in message.lower(), (word, message)
    assert _snapshot(store) == before


@pytest.mark.parametrize("hostile", REVIEW_CASES, ids=case_ids)
def test_bad_import_is_one_error_and_changes_nothing(hostile: Case, store: ReviewStore, tmp_path: Path) -> None:
    _assert_refused_whole(import_json, hostile, store, tmp_path)


@pytest.mark.parametrize("hostile", [c for c in REVIEW_CASES if c.name in (
    "review-nested-100k", "review-duplicate-ids", "review-updated-invalid", "review-huge-file")], ids=case_ids)
def test_review_import_command_says_one_line(hostile: Case, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = hostile.build(tmp_path / "case")
    code = main(["review", "--store", str(tmp_path / "s.sqlite3"), "import", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(hostile.extra["where"]) in err, err
    assert "Traceback" not in err


# -- CSV export ------------------------------------------------------------------------------------------

HOSTILE_TEXT = ["line\rbreak", "line\nbreak", "crlf\r\nbreak", '"quoted"\r', "=1+1", "+SUM(A1)", "-2+3", "@cmd",
                "\tTAB", "\rCR", "＝FULLWIDTH", "plain"]


def _excel_rows(text: str) -> int:
    """Physical rows as Excel counts them: \\r, \\n or \\r\\n outside double quotes end a row."""
    rows, quoted, i = 0, False, 0
    while i < len(text):
        c = text[i]
        if c == '"':
            quoted = not quoted
        elif c in "\r\n" and not quoted:
            rows += 1
            if c == "\r" and text[i + 1:i + 2] == "\n":
                i += 1
        i += 1
    return rows + (0 if text.endswith(("\r", "\n")) else 1)


def test_csv_rows_and_cells_survive_hostile_text(tmp_path: Path) -> None:
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        for n, text in enumerate(HOSTILE_TEXT):
            context = ImageContext(
                study_uid=f"=study{n}", series_uid="-1.2", slice_index=n, sop_instance_uids=(f"@{n}",),
                stack_id="+stack", headers=HeaderAttributes(manufacturer=text, scanner_model=text, kvp="-120",
                                                             patient_sex="=F", age_band="@", body_part=text,
                                                             modality="+CT"),
                model=ModelInfo(text, "=1", "@sha"), method=text, threshold=0.5)
            store.add_flag(context, "correct", text, comment=text, reviewer=text)
        export_csv(store, tmp_path / "out.csv")
    raw = (tmp_path / "out.csv").read_bytes().decode("utf-8")
    assert _excel_rows(raw) == len(HOSTILE_TEXT) + 1  # header + one row per flag, whatever the comments hold
    rows = list(csv.DictReader(io.StringIO(raw, newline="")))
    assert len(rows) == len(HOSTILE_TEXT)
    starts = ("=", "+", "-", "@", "\t", "\r", "\n", "＝")
    for row in rows:
        text = HOSTILE_TEXT[int(row["slice_index"])]  # (flags made in one millisecond list in id order)
        for column, value in row.items():
            assert not value.startswith(starts), (column, value)  # no cell a spreadsheet would evaluate
        expected = "'" + text if text.startswith(starts) else text
        for column in ("comment", "label", "reviewer", "manufacturer", "scanner_model", "body_part", "model_name",
                       "method"):
            assert row[column] == expected, (column, row[column])
        assert row["kvp"] == "'-120" and row["study_uid"].startswith("'=study")


def test_formula_prefix_only_where_needed(tmp_path: Path) -> None:
    doc = base_doc(1)
    doc["flags"][0] = {**flag_dict(0), "comment": "a = b"}
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        import_json(store, write(tmp_path, doc))
        export_csv(store, tmp_path / "out.csv")
    (row,) = csv.DictReader(open(tmp_path / "out.csv", newline="", encoding="utf-8"))
    assert row["comment"] == "a = b" and row["manufacturer"] == "GE" and json.loads(row["region_px"])


# -- RadScope SR imports: the same field checks as JSON ------------------------------------------------------

SR_CASES = cases("review-sr")


def test_the_pristine_sr_imports(store: ReviewStore, tmp_path: Path) -> None:
    """The SR the hostile cases edit is valid: both flags import, with what the record says."""
    from tests.hostile.reviews import write_sr

    outcome, skipped = import_sr(store, write_sr(tmp_path))
    assert outcome == {"added": 2} and skipped == []
    slices = sorted(f.slice_index for f in store.flags() if f.study_uid != "1.2.3")  # not the seeded flag
    assert slices == [0, 1]


@pytest.mark.parametrize("hostile", SR_CASES, ids=case_ids)
def test_bad_sr_is_one_error_and_changes_nothing(hostile: Case, store: ReviewStore, tmp_path: Path) -> None:
    _assert_refused_whole(import_sr, hostile, store, tmp_path)


def test_a_bad_sr_in_a_folder_stops_the_good_ones_too(store: ReviewStore, tmp_path: Path) -> None:
    """All or nothing across a folder: the good SR beside the bad one is not merged either."""
    from tests.hostile.reviews import write_sr

    (bad,) = [c for c in SR_CASES if c.name == "review-sr-negative-slice"]
    bad.build(tmp_path / "folder")
    write_sr(tmp_path / "folder", "SR_good.dcm")
    before = _snapshot(store)
    with pytest.raises(ImportFileError, match="SR_ann.dcm: measurement group #2.slice_index"):
        import_sr(store, tmp_path / "folder")
    assert _snapshot(store) == before


@pytest.mark.parametrize("hostile", [c for c in SR_CASES if c.name in (
    "review-sr-negative-slice", "review-sr-huge-comment", "review-sr-content-nested-40")], ids=case_ids)
def test_review_import_command_says_one_line_for_an_sr(hostile: Case, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = hostile.build(tmp_path / "case")
    code = main(["review", "--store", str(tmp_path / "s.sqlite3"), "import", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(hostile.extra["where"]) in err, err
    assert str(path) in err and "Traceback" not in err

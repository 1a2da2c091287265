"""Hostile review store files (issue 12): empty, foreign, damaged, one bad row, read-only file/folder/home.

Every file is built at test time (tests/support/review_stores.py). Read-only: as root (CI, here) the file or
folder is made immutable with ``chattr +i``, which refuses writes even to root as a read-only mount would;
as another user, permission bits.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from tests.hostile import Case, case_ids, cases
from tests.support.review_stores import (
    context,
    damage_a_flag_page,
    read_only,
    spoil_one_row,
    store_with_flags,
)
from viewer.cli import main
from viewer.review import ReviewStore, ReviewStoreError, StoreReadOnly


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["review", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_empty_file_is_refused_and_never_replaced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "review.sqlite3"
    path.write_bytes(b"")
    with pytest.raises(ReviewStoreError, match=r"review.sqlite3 is empty \(0 bytes\).*does not replace it"):
        ReviewStore(path)
    code, _, err = _cli(capsys, "flag", "--store", str(path), str(tmp_path), "--slice", "0", "--label", "x",
                        "--verdict", "fp")
    assert code == 2 and "0 bytes" in err
    assert path.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["review.sqlite3"]


def test_foreign_file_is_named_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "review.sqlite3"
    path.write_text(json.dumps({"flags": []}) * 50)
    before = _sha(path)
    with pytest.raises(ReviewStoreError, match=r"review.sqlite3 is not a SQLite database .*Nothing was changed"):
        ReviewStore(path)
    assert _sha(path) == before


def test_damaged_page_is_detected_writes_refused_rest_listed(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "review.sqlite3"
    ids = store_with_flags(path, 120)
    lost = damage_a_flag_page(path, ids)
    before = _sha(path)
    with ReviewStore(path) as store:
        assert store.damage and "damaged" in store.read_only
        listed = {f.id for f in store.flags()}
        assert listed == set(ids) - lost  # everything on sound pages still lists
        assert len(store.problems) == len(lost)
        assert all(any(i in p for p in store.problems) for i in lost)  # each unreadable flag is named
        with pytest.raises(StoreReadOnly, match=r"damaged.*writes are refused.*review export"):
            store.add_flag(context(999), "correct", "nodule")
        with pytest.raises(StoreReadOnly):
            store.edit_flag(next(iter(listed)), comment="x")
    assert _sha(path) == before  # nothing went into the damaged file
    code, out, err = _cli(capsys, "list", "--store", str(path))
    assert code == 0 and len(out.splitlines()) == len(ids) - len(lost)
    assert "damaged" in err and all(i in err for i in lost)
    rescue = tmp_path / "rescue.json"
    code, _, err = _cli(capsys, "export", "--store", str(path), "--format", "json", "--out", str(rescue))
    assert code == 0, err
    assert {f["id"] for f in json.loads(rescue.read_text())["flags"]} == set(ids) - lost
    code, _, err = _cli(capsys, "edit", "--store", str(path), next(iter(listed)), "--comment", "x")
    assert code == 2 and "writes are refused" in err
    assert _sha(path) == before


def test_one_bad_row_is_named_and_the_rest_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "review.sqlite3"
    ids = store_with_flags(path, 5, comment_len=10)
    spoil_one_row(path, ids[2])
    with ReviewStore(path) as store:
        assert not store.read_only  # the file is sound; one row's content is not
        assert [f.id for f in store.flags()] == ids[:2] + ids[3:]
        assert len(store.problems) == 1 and ids[2] in store.problems[0] and "unreadable" in store.problems[0]
        store.add_flag(context(7), "correct", "nodule")  # writing the others goes on
    code, out, err = _cli(capsys, "list", "--store", str(path))
    assert code == 0 and len(out.splitlines()) == 5 and ids[2] in err
    code, out, err = _cli(capsys, "summary", "--store", str(path), "--json")
    assert code == 0 and json.loads(out)["overall"]["total"] == 5 and ids[2] in err


def test_read_only_file_reads_and_refuses_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "review.sqlite3"
    ids = store_with_flags(path, 3, comment_len=10)
    before = _sha(path)
    with read_only(path):
        with ReviewStore(path) as store:
            assert "read-only" in store.read_only
            assert [f.id for f in store.flags()] == ids
            with pytest.raises(StoreReadOnly, match=r"cannot save the flag in review store .*review.sqlite3: the file "
                                                    r"is read-only"):
                store.add_flag(context(5), "correct", "nodule")
        code, out, err = _cli(capsys, "list", "--store", str(path))
        assert code == 0 and len(out.splitlines()) == 3 and "read-only" in err
        code, _, err = _cli(capsys, "export", "--store", str(path), "--format", "csv", "--out", str(tmp_path / "o.csv"))
        assert code == 0, err
        code, _, err = _cli(capsys, "delete", "--store", str(path), ids[0])
        assert code == 2 and "read-only" in err
    assert _sha(path) == before and len((tmp_path / "o.csv").read_text().splitlines()) == 4


def test_read_only_home_reads_and_refuses_writes(radscope_home: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A read-only RADSCOPE_HOME: the default store (closed cleanly: no -wal/-shm beside it) opens from a folder
    SQLite cannot write its journal into; export goes elsewhere."""
    folder = radscope_home / "review"
    ids = store_with_flags(folder / "review.sqlite3", 2, comment_len=10)
    assert sorted(p.name for p in folder.iterdir()) == ["review.sqlite3"]
    with read_only(folder, radscope_home):
        code, out, err = _cli(capsys, "list")
        assert code == 0 and [line.split()[0] for line in out.splitlines()] == ids and "read-only" in err
        code, _, err = _cli(capsys, "export", "--format", "json", "--out", str(tmp_path / "o.json"))
        assert code == 0, err
        code, _, err = _cli(capsys, "delete", ids[0])
        assert code == 2 and "folder" in err and "read-only" in err
        assert sorted(p.name for p in folder.iterdir()) == ["review.sqlite3"]
    with ReviewStore() as store:
        assert not store.get_flag(ids[0]).deleted


def test_new_store_never_seen_half_made(tmp_path: Path) -> None:
    """A new store appears complete (built beside its name, then linked), so a second opener never finds the
    empty file it would have to refuse."""
    path = tmp_path / "new" / "review.sqlite3"
    with ReviewStore(path) as store:
        assert store.schema_version > 0 and not store.read_only
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(("-wal", "-shm"))) == ["review.sqlite3"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    conn.close()


@pytest.mark.parametrize("hostile", cases("review_store"), ids=case_ids)
def test_hostile_store_corpus(hostile: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every registered hostile store (tests/hostile/review_stores.py) through `radscope review list`."""
    path = hostile.build(tmp_path / hostile.name)
    before = _sha(path)
    code, out, err = _cli(capsys, "list", "--store", str(path))
    assert path.name in err and all(m in err.lower() for m in hostile.mentions), err
    if hostile.outcome == "refused":
        assert code == 2 and out == ""
    else:
        assert code == 0 and len(out.splitlines()) >= hostile.good
    assert "Traceback" not in err and _sha(path) == before

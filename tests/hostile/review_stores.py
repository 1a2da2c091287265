"""Hostile review store files (``radscope review --store FILE``): each builder writes a store into the folder it is
given and returns its path. ``refused``: the store is not opened (nothing is replaced); ``error``: it opens, the
unreadable flags are named and at least ``good`` flags still list."""

from __future__ import annotations

from pathlib import Path

from tests.hostile import case
from tests.support.review_stores import damage_a_flag_page, spoil_one_row, store_with_flags

NAME = "review.sqlite3"


@case("review-store-empty", "review_store", "refused", ("0 bytes", "does not replace"))
def empty(folder: Path) -> Path:
    (folder / NAME).write_bytes(b"")
    return folder / NAME


@case("review-store-foreign", "review_store", "refused", ("not a sqlite database", "nothing was changed"))
def foreign(folder: Path) -> Path:
    (folder / NAME).write_text('{"format": "radscope-review/1", "flags": []}\n' * 40)
    return folder / NAME


@case("review-store-damaged-page", "review_store", "error", ("damaged", "unreadable"), good=100)
def damaged_page(folder: Path) -> Path:
    ids = store_with_flags(folder / NAME, 120)
    damage_a_flag_page(folder / NAME, ids)
    return folder / NAME


@case("review-store-truncated", "review_store", "refused", ("damaged beyond reading", "nothing was changed"))
def truncated(folder: Path) -> Path:
    """A copy cut short (a full disk, an interrupted transfer): the second half of the file is gone."""
    store_with_flags(folder / NAME, 120)
    path = folder / NAME
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


@case("review-store-bad-row", "review_store", "error", ("unreadable",), good=4)
def bad_row(folder: Path) -> Path:
    ids = store_with_flags(folder / NAME, 5, comment_len=10)
    spoil_one_row(folder / NAME, ids[2])
    return folder / NAME

"""Hostile review store files, built at test time: empty, foreign, a damaged page, one bad row, read-only.

Each builder writes into a folder the caller owns and returns what the test needs to know (the truth).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from viewer.review import ImageContext, ModelInfo, Region, ReviewStore

STUDY = "1.2.826.0.1.3680043.8.498.1"


def context(k: int, study_uid: str = STUDY) -> ImageContext:
    """The image context of slice ``k`` of a made-up series (enough for the store)."""
    return ImageContext(study_uid=study_uid, series_uid=f"{study_uid}.2", slice_index=k,
                        sop_instance_uids=(f"{study_uid}.2.{k}",), model=ModelInfo("m", "1", "0" * 64))


def store_with_flags(path: Path, n: int, *, comment_len: int = 300) -> list[str]:
    """A sound store with ``n`` flags (long comments, so the flag table spans many pages); their ids."""
    with ReviewStore(path) as store:
        ids = [store.add_flag(context(k), "false_positive", "nodule", region=Region.make("point", [(k, k)]),
                              comment=f"flag {k} " + "x" * comment_len, reviewer="ann") for k in range(n)]
    return ids


def damage_a_flag_page(path: Path, ids: list[str]) -> set[str]:
    """Overwrite one leaf page of the ``flag`` table (past its 8-byte header) with garbage, as a bad sector or a
    torn copy would; returns the ids of the flags that lived on that page. The store must be closed."""
    conn = sqlite3.connect(path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = [p for (p,) in conn.execute("SELECT pageno FROM dbstat WHERE name = 'flag' AND pagetype = 'leaf' "
                                        "ORDER BY pageno")]
    conn.close()
    assert len(pages) >= 3, "the flag table must span several pages"
    page = pages[len(pages) // 2]
    with open(path, "r+b") as f:
        f.seek((page - 1) * page_size)
        content = f.read(page_size)
        lost = {i for i in ids if i.encode() in content}
        f.seek((page - 1) * page_size + 8)
        f.write(bytes((i * 37 + 11) % 256 for i in range(page_size - 8)))
    assert lost, "the damaged page held no flag"
    return lost


def spoil_one_row(path: Path, flag_id: str) -> None:
    """Make one flag row unreadable with hand-written SQL (what another tool or a bit flip can leave): its
    SOP Instance UID list and region are no longer JSON and its verdict is not one RadScope knows."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA ignore_check_constraints = ON")
    conn.execute("UPDATE flag SET sop_instance_uids = '[\"1.2', region = '{oops', verdict = 'bogus' WHERE id = ?",
                 (flag_id,))
    conn.commit()
    conn.close()


def chattr_available(folder: Path) -> bool:
    """Whether ``chattr +i`` works here (root on ext4/xfs; not on tmpfs or without CAP_LINUX_IMMUTABLE)."""
    probe = folder / ".chattr-probe"
    probe.write_bytes(b"")
    try:
        ok = shutil.which("chattr") is not None and subprocess.run(
            ["chattr", "+i", str(probe)], capture_output=True).returncode == 0
        if ok:
            subprocess.run(["chattr", "-i", str(probe)], check=True)
        return ok
    finally:
        probe.unlink()


@contextlib.contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Make files or folders read-only for the duration: ``chattr +i`` as root (root ignores permission
    bits; an immutable file refuses even root, as a read-only mount does), else permission bits."""
    root = os.geteuid() == 0
    if root and not chattr_available(paths[0] if paths[0].is_dir() else paths[0].parent):
        pytest.skip("running as root without a working chattr: cannot make a file read-only")
    done: list[Path] = []
    try:
        for p in paths:
            if root:
                subprocess.run(["chattr", "+i", str(p)], check=True)
            else:
                os.chmod(p, 0o555 if p.is_dir() else 0o444)
            done.append(p)
        yield
    finally:
        for p in reversed(done):
            if root:
                subprocess.run(["chattr", "-i", str(p)], check=True)
            else:
                os.chmod(p, 0o755 if p.is_dir() else 0o644)

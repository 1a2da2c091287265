"""PostgreSQL store durability: a flag whose id was printed survives a client killed with SIGKILL mid-stream and a
server crash (``pg_ctl stop -m immediate``: no checkpoint, recovery replays the WAL at restart)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from viewer.review import ReviewStore

pytestmark = pytest.mark.xdist_group("postgres")
REPO = Path(__file__).resolve().parent.parent

WRITER = textwrap.dedent(
    """
    import sys
    from tests.support.review_stores import context
    from viewer.review import Region, ReviewStore, StoreUnavailable
    store = ReviewStore(sys.argv[1], timeout_s=2.0)
    k = 0
    while True:
        try:
            fid = store.add_flag(context(k % 50), "false_positive", "nodule", region=Region.make("point", [(k, k)]),
                                 comment="c" * (k % 700), reviewer="writer")
        except StoreUnavailable as exc:
            print(f"unavailable: {exc}", file=sys.stderr, flush=True)
            sys.exit(3)
        print(fid, flush=True)  # acknowledged: add_flag returned after COMMIT returned
        k += 1
    """
)


def _start_writer(url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO, env=env)


def _read_ids(proc: subprocess.Popen[str], n: int) -> list[str]:
    assert proc.stdout is not None
    ids: list[str] = []
    while len(ids) < n:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"writer stopped early: {proc.stderr.read() if proc.stderr else ''}")
        ids.append(line.strip())
    return ids


def _check(url: str, acknowledged: list[str]) -> None:
    with ReviewStore(url) as store:
        stored = {f.id for f in store.flags()}
        assert set(acknowledged) <= stored  # no acknowledged flag is lost
        assert len(stored) - len(acknowledged) <= 1  # at most the one committed but not yet printed
        assert all(len(store.history(fid)) == 1 for fid in acknowledged[:5])


def test_client_killed_mid_stream_loses_no_acknowledged_flag(postgres_server: Any) -> None:
    url = postgres_server.url(postgres_server.new_database())
    ReviewStore(url).close()
    proc = _start_writer(url)
    try:
        acknowledged = _read_ids(proc, 60)
        proc.send_signal(signal.SIGKILL)  # mid-stream: inside its next add_flag
    finally:
        proc.kill()
        assert proc.stdout is not None
        rest = proc.stdout.read()
        proc.wait(timeout=30)
    acknowledged += [line.strip() for line in rest.splitlines() if line.strip()]
    assert proc.returncode == -signal.SIGKILL
    _check(url, acknowledged)


def test_server_crash_loses_no_acknowledged_flag(postgres_server: Any) -> None:
    url = postgres_server.url(postgres_server.new_database())
    ReviewStore(url).close()
    proc = _start_writer(url)
    try:
        acknowledged = _read_ids(proc, 60)
        postgres_server.stop("immediate")  # the server dies mid-stream, as on a power cut of the process
        assert proc.stdout is not None and proc.stderr is not None
        out = proc.stdout.read()  # through the same buffered reader (communicate() would skip what it holds)
        err = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        proc.kill()
        postgres_server.start()  # crash recovery replays the WAL
    acknowledged += [line.strip() for line in out.splitlines() if line.strip()]
    assert proc.returncode == 3 and "unavailable" in err  # the writer was told, not left thinking it saved
    _check(url, acknowledged)

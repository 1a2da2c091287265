"""A writer killed with SIGKILL mid-stream loses no acknowledged flag and leaves an openable store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from viewer.review import ReviewStore

REPO = Path(__file__).resolve().parent.parent

WRITER = textwrap.dedent(
    """
    import sys
    from viewer.review import ImageContext, ModelInfo, Region, ReviewStore
    store = ReviewStore(sys.argv[1])
    k = 0
    while True:
        ctx = ImageContext(study_uid="1.2.3", series_uid="1.2.3.4", slice_index=k % 50,
                           sop_instance_uids=(f"1.2.3.4.{k}",), model=ModelInfo("m", "1", "0" * 64))
        fid = store.add_flag(ctx, "false_positive", "nodule", region=Region.make("point", [(k, k)]),
                             comment="c" * (k % 700), reviewer="killer")
        print(fid, flush=True)  # acknowledged: add_flag returned, so the commit is durable
        k += 1
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("kill_after", [40, 157])
def test_sigkill_mid_stream_loses_no_acknowledged_flag(tmp_path: Path, kill_after: int) -> None:
    path = tmp_path / "review.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    assert proc.stdout is not None
    acknowledged: list[str] = []
    try:
        while len(acknowledged) < kill_after:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"writer stopped early: {proc.stderr.read() if proc.stderr else ''}")
            acknowledged.append(line.strip())
        proc.send_signal(signal.SIGKILL)  # mid-stream: the writer is inside its next add_flag
    finally:
        proc.kill()
        # Read through the same TextIOWrapper: lines it already buffered would be lost to
        # communicate(), which reads the raw pipe.
        rest = proc.stdout.read()
        proc.wait(timeout=30)
    acknowledged += [line.strip() for line in rest.splitlines() if line.strip()]
    assert proc.returncode == -signal.SIGKILL
    with ReviewStore(path) as store:
        assert store.pragma("integrity_check") == "ok"
        stored = {f.id for f in store.flags()}
        assert set(acknowledged) <= stored
        assert len(stored) - len(acknowledged) <= 1  # at most the one committed but not yet printed
        assert all(len(store.history(fid)) == 1 for fid in acknowledged[:5])


def test_concurrent_writer_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "review.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    bounded = WRITER.replace("while True:", "for _ in range(25):")
    procs = [subprocess.Popen([sys.executable, "-c", bounded, str(path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=REPO, env=env) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    acknowledged = [line for out, _ in outputs for line in out.split()]
    assert len(acknowledged) == 75
    with ReviewStore(path) as store:
        assert sorted(f.id for f in store.flags()) == sorted(acknowledged)
        assert store.pragma("integrity_check") == "ok"

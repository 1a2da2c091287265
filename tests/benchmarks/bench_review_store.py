"""Durable review flags: flags per second and p95 latency of one flag, SQLite beside PostgreSQL, in one run.

``python -m tests.benchmarks review_store``. For each backend, 1 and then 8 reviewer processes (each with its
own store connection, as separate workstations would) start together at a barrier and each saves
``FLAGS_PER_PROCESS`` flags; one flag's latency is ``add_flag`` from call to return (the commit is durable:
SQLite fsyncs its WAL, PostgreSQL flushes its WAL before COMMIT returns). Throughput is all flags over the
wall time from the barrier to the last process done. PostgreSQL is a throw-away cluster started here
(tests/support/postgres.py: Unix socket, fsync on); ratios are PostgreSQL over SQLite measured in this run.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS_PER_PROCESS = 60
WARMUP = 5
PROCESSES = (1, 8)


def _reviewer(location: str, n: int, barrier: Any, out: Any) -> None:
    from tests.support.review_stores import context
    from viewer.review import ReviewStore

    with ReviewStore(location) as store:
        for k in range(WARMUP):
            store.add_flag(context(k), "false_positive", "nodule", reviewer="warmup")
        barrier.wait()
        start = time.perf_counter()
        latencies = []
        for k in range(n):
            t0 = time.perf_counter()
            store.add_flag(context(k % 40), "false_positive", "nodule", comment="c" * 40, reviewer=f"r{os.getpid()}")
            latencies.append(time.perf_counter() - t0)
        out.put((start, time.perf_counter(), latencies))


def measure(location: str, processes: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_reviewer, args=(location, FLAGS_PER_PROCESS, barrier, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(60)
    begin, end = min(r[0] for r in results), max(r[1] for r in results)
    latencies = sorted(x for r in results for x in r[2])
    return {"flags_per_s": len(latencies) / (end - begin),
            "p50_ms": 1000 * statistics.median(latencies),
            "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))]}


def live_latency(location: str, n: int = 30) -> dict[str, float]:
    """Seconds from one session's add_flag returning to another session's listener hearing of it."""
    import threading

    from tests.support.review_stores import context
    from viewer.review import ReviewStore
    from viewer.review.live import listen

    heard = threading.Event()
    with ReviewStore(location) as watcher, ReviewStore(location) as writer:
        listener = listen(watcher, lambda _event: heard.set())
        try:
            deadline = time.monotonic() + 10
            while not listener.connected and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.8)
            delays = []
            for k in range(n):
                heard.clear()
                writer.add_flag(context(k), "correct", "nodule", reviewer="live")
                t0 = time.perf_counter()
                if heard.wait(10):
                    delays.append(time.perf_counter() - t0)
                time.sleep(0.05)
        finally:
            listener.stop()
    delays.sort()
    return {"p50_ms": 1000 * statistics.median(delays), "p95_ms": 1000 * delays[int(0.95 * (len(delays) - 1))],
            "heard": len(delays), "sent": n}


def main() -> None:
    from tests.support.postgres import PostgresServer
    from viewer.review import ReviewStore

    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; {os.cpu_count()} CPUs")
    server = PostgresServer()
    try:
        with tempfile.TemporaryDirectory(prefix="radscope-bench-review-") as tmp:
            rows = []
            for n in PROCESSES:
                lite = str(Path(tmp) / f"review-{n}.sqlite3")
                pg = server.url(server.new_database("bench"))
                for location in (lite, pg):
                    ReviewStore(location).close()  # schema made before the clock starts
                figures = {"sqlite": measure(lite, n), "postgresql": measure(pg, n)}
                rows.append((n, figures))
        print(f"{'processes':>9} {'backend':<11} {'flags/s':>9} {'p50 ms':>8} {'p95 ms':>8}")
        for n, figures in rows:
            for backend, f in figures.items():
                print(f"{n:>9} {backend:<11} {f['flags_per_s']:>9.0f} {f['p50_ms']:>8.1f} {f['p95_ms']:>8.1f}")
            lite, pg = figures["sqlite"], figures["postgresql"]
            print(f"{n:>9} {'pg/sqlite':<11} {pg['flags_per_s'] / lite['flags_per_s']:>9.2f}x "
                  f"{'':>8} {pg['p95_ms'] / lite['p95_ms']:>8.2f}x")
        print("\nlive: from one session's commit to another's listener (PostgreSQL NOTIFY; SQLite polls 2x/s)")
        with tempfile.TemporaryDirectory(prefix="radscope-bench-live-") as tmp:
            lite = str(Path(tmp) / "live.sqlite3")
            for backend, location in (("sqlite", lite), ("postgresql", server.url(server.new_database("live")))):
                f = live_latency(location)
                print(f"  {backend:<11} p50 {f['p50_ms']:.1f} ms, p95 {f['p95_ms']:.1f} ms "
                      f"({f['heard']:.0f} of {f['sent']:.0f} heard)")
    finally:
        server.close()
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

"""Run every benchmark module (or those named on the command line) and print their figures."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import tests.benchmarks as pkg


def main(argv: list[str]) -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("bench_"))
    wanted = [n if n.startswith("bench_") else f"bench_{n}" for n in argv] or names
    unknown = set(wanted) - set(names)
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}; have {', '.join(names)}", file=sys.stderr)
        return 2
    for name in wanted:
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        importlib.import_module(f"tests.benchmarks.{name}").main()
        print(f"--- {name} done in {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

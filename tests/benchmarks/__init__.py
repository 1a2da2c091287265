"""Benchmarks run by ``make bench``: each ``bench_*.py`` module has ``main() -> None``.

A benchmark prints its figures *and* the reference measured in the same run (a ratio), never a
bare timing; none of them asserts a time. Run one alone with ``python -m tests.benchmarks NAME``.
"""

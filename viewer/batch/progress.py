"""Progress of a run over many series: a bar with series/s, slices/s and ETA, and the closing summary."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import TextIO

from viewer.batch.series import SeriesOutcome

WIDTH = 24


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class RunProgress:
    """Counts outcomes as they arrive and draws a one-line bar on ``stream`` (redrawn in place on a
    terminal, at most every ``every_s`` seconds as plain lines otherwise)."""

    def __init__(self, total_series: int, total_slices: int, *, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.perf_counter, every_s: float = 5.0) -> None:
        self.total_series = total_series
        self.total_slices = total_slices
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.t0 = clock()
        self.every_s = every_s
        self._last_line = -1e9
        self.counts: Counter[str] = Counter()
        self.series_done = 0
        self.slices_done = 0
        self.slices_inferred = 0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def add(self, outcome: SeriesOutcome) -> None:
        self.counts[outcome.status] += 1
        self.series_done += 1
        self.slices_done += outcome.n_slices
        if outcome.status == "done":
            self.slices_inferred += outcome.n_slices
        self.draw(final=self.series_done >= self.total_series)

    def rates(self) -> tuple[float, float, float | None]:
        """Series/s, slices/s (of series run, not skipped) and the seconds left (None before any rate)."""
        elapsed = self.clock() - self.t0
        if elapsed < 1.0:  # skipped or refused series arrive at once: no rate worth showing yet
            return 0.0, 0.0, None
        series_rate = self.series_done / elapsed
        slice_rate = self.slices_done / elapsed
        left = self.total_slices - self.slices_done
        eta = left / slice_rate if slice_rate > 0 else None
        return series_rate, slice_rate, eta

    def line(self) -> str:
        series_rate, slice_rate, eta = self.rates()
        frac = self.series_done / self.total_series if self.total_series else 1.0
        filled = int(round(frac * WIDTH))
        bar = "=" * filled + (">" if filled < WIDTH else "") + " " * max(0, WIDTH - filled - 1)
        return (f"[{bar}] {self.series_done}/{self.total_series} series  {series_rate:.2f} series/s  "
                f"{slice_rate:.1f} slices/s  ETA {_clock(eta) if eta is not None else '?'}")

    def draw(self, *, final: bool = False) -> None:
        now = self.clock()
        if self.tty:
            self.stream.write("\r" + self.line() + ("\n" if final else ""))
        elif final or now - self._last_line >= self.every_s:
            self.stream.write("radscope infer: " + self.line() + "\n")
            self._last_line = now
        self.stream.flush()

    def summary(self) -> str:
        c = self.counts
        elapsed = self.clock() - self.t0
        return (f"{self.series_done} series in {elapsed:.1f} s: {c['done']} done, {c['cached']} from the cache, "
                f"{c['skipped']} skipped (already done), {c['failed']} failed, {c['out_of_scope']} out of scope")

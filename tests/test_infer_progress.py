"""The progress line of `radscope infer` over many series: rates, ETA and the closing summary."""

from __future__ import annotations

import io

from viewer.batch.progress import RunProgress
from viewer.batch.series import SeriesOutcome


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _outcome(status: str, n: int) -> SeriesOutcome:
    return SeriesOutcome("s", "s", status, n)  # type: ignore[arg-type]


def test_rates_eta_and_summary() -> None:
    clock, out = Clock(), io.StringIO()
    p = RunProgress(4, 400, stream=out, clock=clock, every_s=0.0)
    p.add(_outcome("skipped", 100))  # at once: no rate to show yet
    assert "ETA ?" in out.getvalue() and "0.00 series/s" in out.getvalue()
    clock.now += 10.0
    p.add(_outcome("done", 100))
    series_rate, slice_rate, eta = p.rates()
    assert (series_rate, slice_rate, eta) == (0.2, 20.0, 10.0)
    assert "2/4 series  0.20 series/s  20.0 slices/s  ETA 0:10" in out.getvalue().splitlines()[-1]
    clock.now += 5.0
    p.add(_outcome("failed", 100))
    p.add(_outcome("out_of_scope", 100))
    assert p.summary() == ("4 series in 15.0 s: 1 done, 0 from the cache, 1 skipped (already done), 1 failed, "
                           "1 out of scope")
    assert out.getvalue().splitlines()[-1].startswith("radscope infer: [========================] 4/4 series")

"""Remaining-time estimate from the timings of the batches run so far."""

from __future__ import annotations

from collections import deque


class EtaEstimator:
    """Seconds per slice over the last ``window`` batches, times the slices still to run.

    The first batch of a run pays for warm-up (first-call allocation, the visible slice alone) and
    is left out once a later batch exists.
    """

    def __init__(self, window: int = 8) -> None:
        self._batches: deque[tuple[int, float]] = deque(maxlen=window)
        self._first: tuple[int, float] | None = None

    def reset(self) -> None:
        self._batches.clear()
        self._first = None

    def add(self, n_slices: int, seconds: float) -> None:
        """Record one finished batch of ``n_slices`` slices that took ``seconds``."""
        if n_slices <= 0 or seconds < 0:
            return
        if self._first is None:
            self._first = (n_slices, seconds)
        else:
            self._batches.append((n_slices, seconds))

    @property
    def seconds_per_slice(self) -> float | None:
        sample = list(self._batches) or ([self._first] if self._first else [])
        slices = sum(n for n, _ in sample)
        return sum(s for _, s in sample) / slices if slices else None

    def eta(self, remaining_slices: int) -> float | None:
        """Estimated seconds until ``remaining_slices`` are done; None before the first batch."""
        rate = self.seconds_per_slice
        return None if rate is None else max(remaining_slices, 0) * rate


def format_eta(seconds: float | None) -> str:
    """``"~12 s"``, ``"~3 min"``, or ``"estimating..."``."""
    if seconds is None:
        return "estimating..."
    if seconds < 90:
        return f"~{max(seconds, 0):.0f} s"
    return f"~{seconds / 60:.0f} min"

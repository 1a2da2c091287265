"""Qt-free, torch-free AI plumbing for the viewer (numpy only).

* :mod:`viewer.ai.scheduler` -- :class:`JobScheduler`: which slices the inference worker runs next
  (the visible slice first, then the rest of the series nearest-first, then layer probes), with
  cancellation by generation so results of a superseded run are recognised and dropped.
* :mod:`viewer.ai.results` -- :class:`SeriesResults`: per-series scores per slice per label and a
  heatmap volume per label, filled as batches arrive; :func:`find_findings` for the findings list.
* :mod:`viewer.ai.eta` -- :class:`EtaEstimator`: remaining time from batch timings.

The Qt worker (``viewer/qt/ai_worker.py``) and panel (``viewer/qt/ai_panel.py``) drive these.
"""

from viewer.ai.eta import EtaEstimator
from viewer.ai.results import Finding, SeriesResults, find_findings
from viewer.ai.scheduler import Batch, JobKind, JobScheduler, RunKey

__all__ = [
    "Batch",
    "EtaEstimator",
    "Finding",
    "JobKind",
    "JobScheduler",
    "RunKey",
    "SeriesResults",
    "find_findings",
]

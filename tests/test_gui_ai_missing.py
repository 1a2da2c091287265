"""The AI never runs on the blank slices of a gap: score 0, no heat; the run completes (and is cached)."""

from __future__ import annotations

import numpy as np

from tests.support.gui_ai import blob_maps
from viewer.dicom.volume import SeriesInfo, Volume
from viewer.qt.ai_worker import BatchOutput


class OneLabelSession:
    """Scores 0.5 and a blob on every slice it is given; records which slices it ran."""

    device = "cpu"
    methods = ("gradcam",)

    def __init__(self) -> None:
        self.ran: list[int] = []

    def run(self, volume, indices, method, cancel, notify):  # type: ignore[no-untyped-def]
        for k in indices:
            self.ran.append(int(k))
            yield BatchOutput((k,), np.array([[0.5]], np.float32), {"nodule": blob_maps(1, *volume.shape[1:3], (10.0, 12.0))})


def test_missing_slices_are_not_inferred(qtbot, make_controller) -> None:  # type: ignore[no-untyped-def]
    from viewer.qt.series_model import SeriesModel

    n = 9
    missing = np.zeros(n, dtype=bool)
    missing[[3, 4]] = True
    vol = Volume(np.zeros((n, 20, 24), np.int16), np.zeros(3), np.array([0.7, 0.7, 2.0]), np.eye(3),
                 ["" if m else f"1.2.{k}" for k, m in enumerate(missing)],
                 info=SeriesInfo(series_uid="1.2", stack_id="1.2", modality="CT"), missing=missing)
    sessions: list[OneLabelSession] = []

    def factory(ref):  # type: ignore[no-untyped-def]
        sessions.append(OneLabelSession())
        return sessions[-1]

    ctl = make_controller(qtbot, factory)
    ctl.set_series(SeriesModel(vol), "1.2")
    qtbot.waitUntil(lambda: ctl.results is not None and ctl.results.complete, timeout=20000)
    assert sorted(sessions[-1].ran) == [0, 1, 2, 5, 6, 7, 8]
    scores = ctl.results.label_scores("nodule")
    assert (scores[[3, 4]] == 0).all() and (scores[~missing] == np.float32(0.5)).all()
    assert not ctl.results.heatmap("nodule")[[3, 4]].any() and ctl.results.heatmap("nodule")[5].max() > 0

"""The viewer's AI path feeds the model what `radscope infer` feeds it: viewer.ai.model_input's slices."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.gui_ai import ImageBlobSession
from viewer.dicom.volume import SeriesInfo, Volume

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints")]


def test_a_monochrome1_series_reaches_the_model_inverted(qtbot, make_controller) -> None:  # type: ignore[no-untyped-def]
    """Over the stored range (BitsStored 12: 4095 - v), whatever values the slices hold."""
    from viewer.qt.series_model import SeriesModel

    seen: dict[int, np.ndarray] = {}

    class Recording(ImageBlobSession):
        def run(self, volume, indices, method, cancel, notify):  # type: ignore[no-untyped-def]
            seen.update({int(k): np.array(volume[k]) for k in indices})
            yield from super().run(volume, indices, method, cancel, notify)

    stored = np.random.default_rng(0).integers(100, 3000, (3, 20, 24)).astype(np.float32)
    info = SeriesInfo(series_uid="1.2.9", stack_id="1.2.9", modality="CT", monochrome1=True,
                      photometric="MONOCHROME1", bits_stored=12, rescale=((1.0, 0.0),) * 3)
    vol = Volume(stored.copy(), origin=np.zeros(3), spacing=np.ones(3), direction=np.eye(3),
                 sop_instance_uids=["1.2.9.1", "1.2.9.2", "1.2.9.3"], info=info)
    ctl = make_controller(qtbot, Recording)
    with qtbot.waitSignal(ctl.finished, timeout=20000):
        ctl.set_series(SeriesModel(vol), "1.2.9")
    assert sorted(seen) == [0, 1, 2]
    for k in range(3):
        np.testing.assert_array_equal(seen[k], 4095.0 - stored[k])
    np.testing.assert_array_equal(vol.array, stored)  # the displayed volume is untouched

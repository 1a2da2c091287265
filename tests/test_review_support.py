"""The review tests' generated series (tests/support/review_series.py) is what they assume.

The helpers are re-exported here for the test modules that still import them from this module.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.review_series import MODEL, SLICE_STEP_MM, context_of, make_ct_series

__all__ = ["MODEL", "SLICE_STEP_MM", "context_of", "make_ct_series"]


def test_generated_series_is_in_slice_order(tmp_path: Path) -> None:
    series = make_ct_series(tmp_path, 3)
    z = [float(ds.ImagePositionPatient[2]) for ds in series]
    assert z == sorted(z) and len({ds.SOPInstanceUID for ds in series}) == 3
    assert len(list(tmp_path.glob("*.dcm"))) == 3

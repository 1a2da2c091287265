"""Reviewers' ROIs as flag regions (Qt-free): a rectangle or ellipse drawn on an acquisition slice becomes a
:class:`~viewer.review.Region` in the image's pixel coordinates, with its patient-space (LPS mm) geometry when
the header gave a position, an orientation and a pixel spacing."""

from __future__ import annotations

import math

import numpy as np

from viewer.dicom.volume import Volume
from viewer.display.measure import MeasurementRecord
from viewer.display.orientation import has_patient_geometry, spacing_known
from viewer.display.planes import Plane
from viewer.review.model import Region, SliceGeometry

ELLIPSE_POINTS = 36
"""Vertices of the polygon that records a rotated ellipse ROI."""
ROI_KINDS = {"rect": "rectangle", "ellipse": "ellipse"}


# -- ROIs to regions (Qt-free maths) -------------------------------------------------------------
def volume_slice_geometry(volume: Volume, k: int) -> SliceGeometry | None:
    """Where slice ``k`` of ``volume`` lies in the patient (LPS), or None when the header gave no patient
    position/orientation or no pixel spacing (the engine's stand-in geometry is not patient space)."""
    if not has_patient_geometry(volume.info) or not spacing_known(volume.info, volume.warnings):
        return None
    d = np.asarray(volume.direction, dtype=np.float64)
    position = volume.index_to_lps(np.array([0.0, 0.0, float(k)]))
    return SliceGeometry(
        position=tuple(float(v) for v in position),  # type: ignore[arg-type]
        row_direction=tuple(float(v) for v in d[:, 0]),  # type: ignore[arg-type]
        column_direction=tuple(float(v) for v in d[:, 1]),  # type: ignore[arg-type]
        pixel_spacing=(float(volume.spacing[1]), float(volume.spacing[0])),
        frame_of_reference_uid=volume.info.frame_of_reference_uid,
    )


def acquisition_plane(record: MeasurementRecord, volume: Volume) -> Plane | None:
    """The plane a measurement was drawn on when it shows acquisition slices (slice axis k), else None."""
    try:
        plane = Plane.for_view(record.plane, volume.direction)
    except ValueError:
        return None
    return plane if plane.slice_axis == 0 else None


def is_roi_on_slice(record: MeasurementRecord, volume: Volume, k: int) -> bool:
    """Is ``record`` a rectangle or ellipse ROI drawn on acquisition slice ``k``?"""
    return record.kind in ROI_KINDS and record.slice_index == k and acquisition_plane(record, volume) is not None


def region_from_roi(record: MeasurementRecord, volume: Volume, geometry: SliceGeometry | None = None) -> Region:
    """The flag region of a rectangle/ellipse ROI drawn on an acquisition slice, in the image's pixel
    ``(column, row)`` coordinates (and LPS mm from ``geometry``). An unrotated ROI keeps its kind (two
    bounding-box corners); a rotated one becomes the polygon it covers."""
    plane = acquisition_plane(record, volume)
    if plane is None or record.kind not in ROI_KINDS:
        raise ValueError(f"a {record.kind} on the {record.plane} plane is not an ROI on an acquisition slice")
    matrix = plane.scene_matrix(volume.direction, volume.spacing)

    def to_px(local: np.ndarray) -> tuple[float, float]:
        t = math.radians(record.angle)
        rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
        x, y = rot @ local + np.asarray(record.pos, dtype=np.float64)
        col, row = Plane.scene_to_plane(float(x), float(y), matrix)
        ijk = plane.plane_to_index(col, row, record.slice_index, volume.shape)
        return float(ijk[0]), float(ijk[1])

    w, h = record.size
    if abs(record.angle % 360.0) < 1e-9:
        (x0, y0), (x1, y1) = to_px(np.array([0.0, 0.0])), to_px(np.array([w, h]))
        corners = ((min(x0, x1), min(y0, y1)), (max(x0, x1), max(y0, y1)))
        return Region.make(ROI_KINDS[record.kind], corners, geometry)
    if record.kind == "rect":
        local = [np.array(p, dtype=np.float64) for p in ((0, 0), (w, 0), (w, h), (0, h))]
    else:
        a = np.linspace(0.0, 2 * math.pi, ELLIPSE_POINTS, endpoint=False)
        local = [np.array([w / 2 * (1 + math.cos(t)), h / 2 * (1 + math.sin(t))]) for t in a]
    return Region.make("polygon", [to_px(p) for p in local], geometry)

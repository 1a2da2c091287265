"""MPR planes: how a view shows a volume (which array axes run across and down the screen, flips),
and the mapping between screen coordinates (mm), voxel indices and LPS positions.

Display conventions (as in every radiology workstation):

* axial: seen from the feet: patient right on screen left, anterior up;
* coronal: seen from the front: patient right on screen left, superior up;
* sagittal: seen from the patient's left: anterior on screen left, superior up;
* acquisition: the slices as stored (row 0 at the top, column 0 on the left).

Reformats follow the volume's own axes (the axis closest to each anatomical direction), so they need no
interpolation and keep the true spacing; the orientation letters come from the real direction cosines, so
an oblique or flipped acquisition is labelled as it is.

Screen ("scene") coordinates are mm in the plane: pixel (col, row) covers
``[col*sx, (col+1)*sx] x [row*sy, (row+1)*sy]``, its centre at ``((col+0.5)*sx, (row+0.5)*sy)``; in
general scene = ``scene_matrix @ (col + 0.5, row + 0.5)``, which shears a tilted acquisition's reformats.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from viewer.display.orientation import edge_letters

# (screen-right, screen-down) directions in LPS for each anatomical view.
VIEW_DIRECTIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}
PLANE_NAMES = ("acquisition", "axial", "coronal", "sagittal")


def _axis_vector(direction: np.ndarray, axis: int) -> np.ndarray:
    """LPS unit vector of array axis ``axis`` (0 = k, 1 = j, 2 = i)."""
    return np.asarray(direction, dtype=np.float64)[:, 2 - axis]


@dataclass(frozen=True)
class Plane:
    """One view of a volume along its own axes: array axes for slice, screen row and screen column."""

    name: str
    slice_axis: int
    row_axis: int
    col_axis: int
    flip_row: bool = False
    flip_col: bool = False

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def for_view(cls, name: str, direction: np.ndarray) -> Plane:
        """The plane showing view ``name`` (one of :data:`PLANE_NAMES`) of a volume with ``direction``."""
        if name == "acquisition":
            return cls("acquisition", 0, 1, 2)
        if name not in VIEW_DIRECTIONS:
            raise ValueError(f"unknown view {name!r}; known: {', '.join(PLANE_NAMES)}")
        right, down = (np.array(v) for v in VIEW_DIRECTIONS[name])
        normal = np.cross(right, down)
        axes = [_axis_vector(direction, a) for a in range(3)]
        best: tuple[float, tuple[int, int, int]] | None = None
        for col, row, sl in itertools.permutations(range(3)):
            score = abs(axes[col] @ right) + abs(axes[row] @ down) + abs(axes[sl] @ normal)
            if best is None or score > best[0] + 1e-9:
                best = (score, (col, row, sl))
        assert best is not None
        col, row, sl = best[1]
        return cls(name, sl, row, col, flip_row=bool(axes[row] @ down < 0), flip_col=bool(axes[col] @ right < 0))

    # -- sizes -------------------------------------------------------------------------------
    def n_slices(self, shape: tuple[int, ...]) -> int:
        return int(shape[self.slice_axis])

    def image_shape(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """(rows, columns) on screen."""
        return int(shape[self.row_axis]), int(shape[self.col_axis])

    def pixel_spacing(self, spacing_xyz: np.ndarray) -> tuple[float, float]:
        """(sx, sy): mm per screen column and per screen row."""
        sp = np.asarray(spacing_xyz, dtype=np.float64)
        return float(sp[2 - self.col_axis]), float(sp[2 - self.row_axis])

    def slice_spacing(self, spacing_xyz: np.ndarray) -> float:
        return float(np.asarray(spacing_xyz, dtype=np.float64)[2 - self.slice_axis])

    # -- pixels ------------------------------------------------------------------------------
    def image(self, array: np.ndarray, s: int) -> np.ndarray:
        """Screen image of slice ``s`` (rows, cols) or (rows, cols, 3): a view, no copy when possible."""
        index: list[object] = [slice(None)] * 3
        index[self.slice_axis] = int(s)
        img = array[tuple(index)]
        if self.row_axis > self.col_axis:
            img = np.swapaxes(img, 0, 1)
        if self.flip_row:
            img = img[::-1]
        if self.flip_col:
            img = img[:, ::-1]
        return img

    # -- coordinates -------------------------------------------------------------------------
    def plane_to_index(self, col: float, row: float, s: float, shape: tuple[int, ...]) -> np.ndarray:
        """Continuous voxel index (i, j, k) of screen pixel (col, row) on slice ``s``."""
        v = np.zeros(3)
        v[self.col_axis] = (shape[self.col_axis] - 1 - col) if self.flip_col else col
        v[self.row_axis] = (shape[self.row_axis] - 1 - row) if self.flip_row else row
        v[self.slice_axis] = s
        return v[::-1].copy()

    def index_to_plane(self, ijk: np.ndarray, shape: tuple[int, ...]) -> tuple[float, float, float]:
        """(col, row, slice) of a continuous voxel index (i, j, k)."""
        v = np.asarray(ijk, dtype=np.float64)[::-1]
        col = v[self.col_axis]
        row = v[self.row_axis]
        if self.flip_col:
            col = shape[self.col_axis] - 1 - col
        if self.flip_row:
            row = shape[self.row_axis] - 1 - row
        return float(col), float(row), float(v[self.slice_axis])

    def scene_matrix(self, direction: np.ndarray, spacing_xyz: np.ndarray) -> np.ndarray:
        """2x2 matrix taking a (column, row) pixel step to scene mm: true in-plane distances.

        Columns run along screen x; a row step keeps its component along the columns (a shear) when the
        volume's axes are not perpendicular (gantry tilt), and its perpendicular part sets the height, so
        a tilted acquisition is drawn as the parallelogram it is. Diagonal (sx, sy) for orthogonal volumes.
        """
        right, down = self.screen_vectors(direction)
        sx, sy = self.pixel_spacing(spacing_xyz)
        u, v = right * sx, down * sy
        e1 = u / np.linalg.norm(u)
        along = float(v @ e1)
        across = float(np.linalg.norm(v - along * e1))
        return np.array([[float(np.linalg.norm(u)), along], [0.0, across]])

    @staticmethod
    def scene_to_plane(x: float, y: float, matrix: np.ndarray) -> tuple[float, float]:
        """Continuous (col, row) of a scene point in mm (pixel centres at integers)."""
        c, r = np.linalg.solve(matrix, np.array([x, y], dtype=np.float64))
        return float(c) - 0.5, float(r) - 0.5

    @staticmethod
    def plane_to_scene(col: float, row: float, matrix: np.ndarray) -> tuple[float, float]:
        x, y = matrix @ np.array([col + 0.5, row + 0.5])
        return float(x), float(y)

    # -- orientation -------------------------------------------------------------------------
    def screen_vectors(self, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """LPS unit vectors of screen-right and screen-down."""
        right = _axis_vector(direction, self.col_axis) * (-1.0 if self.flip_col else 1.0)
        down = _axis_vector(direction, self.row_axis) * (-1.0 if self.flip_row else 1.0)
        return right, down

    def letters(self, direction: np.ndarray) -> dict[str, str]:
        """Orientation letters for the four edges of this plane as drawn: screen-down is the part of the row
        direction perpendicular to the columns (they differ when a tilted acquisition is drawn sheared)."""
        right, down = self.screen_vectors(direction)
        e1 = right / np.linalg.norm(right)
        return edge_letters(e1, down - (down @ e1) * e1)


def slice_position_mm(plane: Plane, origin: np.ndarray, spacing_xyz: np.ndarray, direction: np.ndarray,
                      s: int) -> float:
    """Where slice ``s`` of ``plane`` lies along its normal (mm), signed along the patient axis that normal is
    closest to (LPS: an axial view reads z, superior positive; coronal y, posterior positive; sagittal x, left
    positive), whatever order the acquisition stores its rows or slices in: the axial view of a sagittal series
    reads the same z as an axial series through the same point."""
    axis = 2 - plane.slice_axis
    vec = _axis_vector(direction, plane.slice_axis)
    if vec[int(np.argmax(np.abs(vec)))] < 0:
        vec = -vec
    offset = np.zeros(3)
    offset[axis] = s * float(np.asarray(spacing_xyz, dtype=np.float64)[axis])
    return float((np.asarray(origin, dtype=np.float64) + np.asarray(direction, dtype=np.float64) @ offset) @ vec)


def clamp_slice(s: float, n: int) -> int:
    """Nearest valid slice index."""
    return int(min(max(int(np.floor(s + 0.5)), 0), n - 1))


def is_orthogonal(direction: np.ndarray, tol: float = 1e-3) -> bool:
    """Are the volume's axes perpendicular? (Not with gantry tilt: then reformats along the volume axes are
    sheared, and a view should say so.)"""
    d = np.asarray(direction, dtype=np.float64)
    g = d.T @ d
    return bool(np.all(np.abs(g - np.diag(np.diag(g))) < tol))

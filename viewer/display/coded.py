"""``CodedVolume``: a (k, j, i) map in [0, 1] (times a per-slice factor) held as uint8 codes.

Heat maps are held this way (a quarter of float32; the results cache stores the same codes): value =
``codes * scale[k]``, where ``scale[k]`` is 1/255 for a plain map or score/255 for a map weighted by its
slice's score, so a value is at most half a code (0.002 times the factor) from what was stored. Reading
(``vol[idx]``, ``np.asarray(vol)``) decodes only what is asked for, as float32: a view draws one plane of
it at a time (``Plane.image(vol, s)`` indexes it like an array).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from viewer.float_volume import Float32Volume

CODE_MAX = 255


def encode_unit(values: np.ndarray) -> np.ndarray:
    """uint8 codes of values in [0, 1] (NaN as 0, clipped). One float32 temporary (the input is never
    modified): a batch of native-size maps is coded as it arrives without several copies of it alive."""
    v = np.array(values, dtype=np.float32, copy=True)
    np.nan_to_num(v, copy=False, nan=0.0)
    np.clip(v, 0.0, 1.0, out=v)
    v *= CODE_MAX
    np.rint(v, out=v)
    return v.astype(np.uint8)


class CodedVolume(Float32Volume):
    """uint8 ``codes`` (k, j, i) and a float32 per-slice ``scale`` (k,): value = codes * scale[k].

    Both arrays are shared, not copied: writing into them (as :class:`viewer.ai.results.SeriesResults`
    does batch by batch) changes what the volume reads.
    """

    def __init__(self, codes: np.ndarray, scale: np.ndarray | None = None) -> None:
        if codes.dtype != np.uint8 or codes.ndim != 3:
            raise ValueError(f"codes must be a uint8 (k, j, i) array, got {codes.dtype} {codes.shape}")
        self.codes = codes
        self.scale = (np.full(codes.shape[0], 1.0 / CODE_MAX, dtype=np.float32) if scale is None
                      else np.asarray(scale, dtype=np.float32))
        if self.scale.shape != (codes.shape[0],):
            raise ValueError(f"scale must have one factor per slice ({codes.shape[0]}), got {self.scale.shape}")

    @classmethod
    def zeros(cls, shape: tuple[int, int, int]) -> CodedVolume:
        return cls(np.zeros(shape, dtype=np.uint8))

    # -- array-like reading ----------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        k, j, i = self.codes.shape
        return int(k), int(j), int(i)

    @property
    def size(self) -> int:
        return int(self.codes.size)

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.scale.nbytes)

    def _factors(self) -> np.ndarray:
        return np.broadcast_to(self.scale[:, None, None], self.codes.shape)

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.multiply(self.codes[index], self._factors()[index], dtype=np.float32)

    # arithmetic on the decoded values (comparisons in tests, exports): a float32 array comes back
    def __sub__(self, other: Any) -> np.ndarray:
        return np.asarray(self) - np.asarray(other)

    def __rsub__(self, other: Any) -> np.ndarray:
        return np.asarray(other) - np.asarray(self)

    def __add__(self, other: Any) -> np.ndarray:
        return np.asarray(self) + np.asarray(other)

    __radd__ = __add__

    def __mul__(self, other: Any) -> np.ndarray:
        return np.asarray(self) * np.asarray(other)

    __rmul__ = __mul__

    def copy(self) -> np.ndarray:
        """The decoded values (float32)."""
        return self[...]

    def max(self) -> float:
        """Largest value (slice by slice: no full decode)."""
        if self.codes.size == 0:
            return 0.0
        return float(max(float(self.codes[k].max()) * float(self.scale[k]) for k in range(self.shape[0])))

    def any(self) -> bool:
        return bool(any(self.codes[k].any() and self.scale[k] != 0 for k in range(self.shape[0])))

    # -- writing ---------------------------------------------------------------------------------
    def __setitem__(self, index: Any, values: Any) -> None:
        """Store values (in this volume's units: divided by each slice's factor, then coded)."""
        factors = self._factors()[index] * CODE_MAX
        v = np.asarray(values, dtype=np.float32)
        unit = np.divide(v, factors, out=np.zeros(np.broadcast_shapes(v.shape, factors.shape), np.float32),
                         where=factors > 0)
        self.codes[index] = encode_unit(unit)

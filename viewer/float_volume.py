"""Array-like float32 ``(k, rows, cols)`` volumes that are not numpy arrays: what they share.

:class:`Float32Volume` gives ``ndim``, ``dtype``, ``len`` and ``np.asarray`` to a volume whose subclass gives
``shape`` and ``__getitem__`` (`viewer.display.coded.CodedVolume`). :class:`SliceSequence` is one whose slices are
made when read (``_slice(k)``), indexed by an int, a slice or a list of ints (`viewer.ai.model_input.ModelInput`,
`viewer.ai.reformat_run.ReformatInput`): it stands in for the array wherever slices are read by index.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np


class Float32Volume:
    """A read-only float32 volume: a subclass gives ``shape`` and ``__getitem__``."""

    @property
    def shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def __getitem__(self, index: Any) -> Any:
        raise NotImplementedError

    @property
    def ndim(self) -> int:
        return 3

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    def __len__(self) -> int:
        return int(self.shape[0])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)


class SliceSequence(Float32Volume, Sequence[np.ndarray]):
    """A float32 volume made slice by slice when read: a subclass gives ``shape`` and ``_slice(k)``
    (``0 <= k < len``); ``noun`` words a slice in an index error."""

    noun = "slice"

    def _slice(self, k: int) -> np.ndarray:
        raise NotImplementedError

    def __getitem__(self, k: Any) -> Any:
        n = len(self)
        if isinstance(k, (int, np.integer)):
            if not -n <= int(k) < n:
                raise IndexError(f"{self.noun} {int(k)} outside its {n} slices")
            return self._slice(int(k) % n)
        if isinstance(k, slice):
            ks = list(range(*k.indices(n)))
        elif isinstance(k, (list, tuple, np.ndarray)) and all(isinstance(i, (int, np.integer)) for i in k):
            ks = [int(i) for i in k]
        else:
            raise TypeError(f"{type(self).__name__} indices are ints, slices or lists of ints, not {type(k).__name__}")
        return np.stack([self[i] for i in ks]) if ks else np.zeros((0, *self.shape[1:]), dtype=np.float32)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self._slice(k) for k in range(len(self)))

"""Keep the C heap from holding on to memory the viewer has freed (glibc; a no-op elsewhere). Qt-free.

glibc serves an allocation of at least ``M_MMAP_THRESHOLD`` bytes with its own mapping, returned to the
system when freed; smaller ones come from the heap (one arena per thread), whose freed space mostly stays
resident. The threshold starts at 128 KiB but, by default, rises to the size of every mapped block that is
freed (up to 32 MiB): after the first freed float32 slice (1 MiB at 512 x 512) every later slice-sized
buffer (decoded pixels, the drawn slice as float32, model-input batches, the runner's native-size maps)
comes from the heaps of the decode, GUI and inference threads, and the freed space stays in each of them.
Measured on the 300-slice CT of ``python -m tests.benchmarks memory``: about 40 MB more resident after
opening the series, 15-20 MB more after a model run. :func:`cap_mmap_threshold` fixes the threshold (each
such buffer costs its page faults, about 0.1 ms per MiB); :func:`release_free_memory` (``malloc_trim``) hands
back what the heaps still hold after large transient work (model load and warm-up, a finished run).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD = 128 * 1024
"""glibc's own starting threshold: every buffer of a slice or more gets a mapping of its own."""


@cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - glibc only (musl has neither)
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def cap_mmap_threshold(nbytes: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``nbytes`` for this process (no dynamic rise); False where not glibc."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_MMAP_THRESHOLD, int(nbytes)) == 1)


def release_free_memory() -> bool:
    """Return the free space of every heap arena to the system (``malloc_trim(0)``; ctypes releases the GIL
    for the call). True when glibc released something."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0) == 1)

"""viewer.heap: freed slice-sized buffers really go back to the system (glibc), measured as resident memory
of a child process (each variant in a fresh interpreter: the mmap threshold is process-wide)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from viewer.heap import _libc

CHILD = """
import sys
import numpy as np
from viewer.heap import cap_mmap_threshold, release_free_memory

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

if sys.argv[1] == "capped":
    assert cap_mmap_threshold()
big = np.ones(4 << 18)  # 8 MiB, mapped; freeing it lifts glibc's dynamic threshold above a slice's size
del big
before = rss()
slices, pins = [], []
for _ in range(100):  # 1 MiB float32 slices, each followed by a small live buffer (as a viewer's heap is)
    slices.append(np.ones((512, 512), np.float32))
    pins.append(np.ones(300))
del slices
if sys.argv[1] == "trimmed":
    assert release_free_memory()
print(rss() - before)
"""


def _retained_mb(variant: str) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD, variant], capture_output=True, text=True, check=True,
                         timeout=120)
    return float(out.stdout.split()[-1])


@pytest.mark.skipif(_libc() is None, reason="glibc's mallopt/malloc_trim only (Linux)")
def test_capped_threshold_returns_freed_slices() -> None:
    default, capped = _retained_mb("default"), _retained_mb("capped")
    assert default > 50, f"the default threshold should keep the freed 100 MiB in the heap; kept {default:.0f} MB"
    assert capped < 10, f"with the capped threshold the freed slices should be unmapped; kept {capped:.0f} MB"


@pytest.mark.skipif(_libc() is None, reason="glibc's mallopt/malloc_trim only (Linux)")
def test_release_returns_free_heap_space() -> None:
    trimmed = _retained_mb("trimmed")
    assert trimmed < 10, f"malloc_trim should hand back the freed slices between the pins; kept {trimmed:.0f} MB"

"""Importing torch on a background thread without breaking scipy on another.

scipy's array-API helpers decide whether a value is a torch tensor by looking ``torch.Tensor`` up in
``sys.modules['torch']`` (without importing torch). While one thread is still initialising torch, another
thread that runs such a check finds a half-built module and fails with ``AttributeError: partially initialized
module 'torch' has no attribute 'Tensor'``. Seen: ``radscope demo`` died in 1 of 3 fresh starts when the
review panel's module imported ``scipy.stats`` on the GUI thread (its import draws examples through those
helpers) while the inference thread imported torch. The inference thread therefore imports ``scipy.stats``
first: a second thread importing it waits on Python's own module lock, and once it is in ``sys.modules`` its
import runs no code; the checks it made are cached for the common array and number types.
"""

from __future__ import annotations

import threading
from types import ModuleType

_LOCK = threading.Lock()


def import_torch() -> ModuleType:
    """``torch``, imported after ``scipy.stats`` (call this first on any thread that imports torch)."""
    with _LOCK:
        import scipy.stats  # noqa: F401  (before torch: see the module docstring)
        import torch

    return torch

"""One lock for importing torch and scipy.stats on different threads (no torch import here).

scipy's array-API helpers decide whether a value is a torch tensor by looking ``torch.Tensor`` up in
``sys.modules['torch']`` (without importing torch). Importing ``scipy.stats`` runs such checks (its
distributions draw their documentation examples at import), so a thread importing it while another is still
initialising torch finds a half-built module and fails with ``AttributeError: module 'torch' has no attribute
'Tensor'``. Seen: ``radscope demo`` died in 1 of 3 fresh starts when the review panel's module imported
``scipy.stats`` on the GUI thread while the inference thread imported torch.

Both imports therefore go through one lock: :func:`viewer.torch_import.import_torch` (the inference thread, before anything else
of torch) and :func:`import_scipy_stats` (whoever needs scipy.stats in the viewer process: imported only
then, as it costs ~40 MB of resident memory that a session without the review summary never uses).
scipy's other modules the viewer calls (ndimage, fft) make no such checks unless ``SCIPY_ARRAY_API`` is set.
"""

from __future__ import annotations

import threading
from types import ModuleType

IMPORT_LOCK = threading.Lock()
"""Held by :func:`viewer.torch_import.import_torch` for torch's whole import, and by :func:`import_scipy_stats`."""


def import_scipy_stats() -> ModuleType:
    """``scipy.stats``, never imported while another thread is half-way through importing torch."""
    with IMPORT_LOCK:
        import scipy.stats

    return scipy.stats

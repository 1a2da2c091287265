"""``import_torch``: torch imported under :data:`viewer.import_lock.IMPORT_LOCK` (why: that module's docstring)."""

from __future__ import annotations

from types import ModuleType

from viewer.import_lock import IMPORT_LOCK


def import_torch() -> ModuleType:
    """``torch``, never imported while another thread imports scipy.stats (call this before any other
    torch import on a thread)."""
    with IMPORT_LOCK:
        import torch

    return torch

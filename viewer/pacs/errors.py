"""Errors of the PACS layer: every message names the node (never its credentials) and the reason."""

from __future__ import annotations


class PacsError(Exception):
    """A PACS operation that failed as a whole (unreachable node, refused association, bad spec)."""


class NodeSpecError(PacsError):
    """A node name or inline spec that cannot be used."""

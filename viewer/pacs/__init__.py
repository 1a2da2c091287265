"""GUI-free DICOM networking: PACS nodes, DIMSE (pynetdicom) and DICOMweb (dicomweb-client) clients,
the local store retrieved instances land in, and a listening storage SCP. No Qt, no torch.

Entry points: :func:`nodes.resolve` (a saved name or an inline spec -> node), :func:`client_for`
(node -> client with ``echo``/``find``/``retrieve``/``send``), :class:`store.LocalStore`.
"""

from __future__ import annotations

from viewer.pacs.errors import NodeSpecError, PacsError
from viewer.pacs.nodes import DimseNode, Node, WebNode, resolve
from viewer.pacs.query import FindResult, Query, SeriesMatch, StudyMatch


def client_for(node: Node):  # type: ignore[no-untyped-def]
    """The client speaking ``node``'s protocol (imported lazily: DIMSE needs no HTTP stack and back)."""
    if isinstance(node, DimseNode):
        from viewer.pacs.dimse import DimseClient

        return DimseClient(node)
    from viewer.pacs.web import WebClient

    return WebClient(node)


__all__ = [
    "DimseNode", "FindResult", "Node", "NodeSpecError", "PacsError", "Query", "SeriesMatch", "StudyMatch",
    "WebNode", "client_for", "resolve",
]

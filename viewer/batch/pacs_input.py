"""PACS query results as ``radscope infer`` inputs: find studies on a node, retrieve each into the local PACS
store under ``RADSCOPE_HOME`` (resumable: instances already there are not asked for again), infer the folders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from viewer.pacs.nodes import Node

Say = Callable[[str], None]


@dataclass
class PacsInputs:
    folders: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def retrieve_for_inference(node: Node, *, studies: list[str] | None = None, modality: str | None = None,
                           study_date: str | None = None, patient_id: str | None = None,
                           accession: str | None = None, limit: int = 500, say: Say) -> PacsInputs:
    """The local folders of the studies ``studies`` (or those a query finds) on ``node``, each retrieved
    (what is missing only); a study that fails, wholly or in part, is a problem and the rest go on. Raises
    :class:`viewer.pacs.PacsError` when the node cannot be queried at all."""
    from viewer.pacs import PacsError, Query, client_for
    from viewer.pacs.retrieve import retrieve
    from viewer.pacs.store import LocalStore

    client = client_for(node)
    if not studies:
        found = client.find(Query(modality=modality, study_date=study_date, patient_id=patient_id,
                                  accession=accession, limit=limit))
        studies = [s.study_uid for s in found.studies]
        say(f"{node.describe()}: {len(studies)} studies match" + (" (more exist: raise --pacs-limit)"
                                                                 if found.truncated else ""))
        for warning in found.warnings:
            say(f"{node.describe()}: {warning}")
    out = PacsInputs()
    store = LocalStore()
    for uid in studies:
        try:
            report = retrieve(client, uid, store=store)
        except PacsError as exc:
            out.problems.append(f"study {uid}: {exc}")
            continue
        if not report.complete:
            out.problems.append(f"study {uid}: {report.summary()} (inferring what arrived; rerun to resume)")
        if Path(report.folder).is_dir():
            out.folders.append(str(report.folder))
        say(f"{node.describe()}: study {uid} in {report.folder}")
    return out

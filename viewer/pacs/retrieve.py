"""One retrieval, whatever the protocol: list what the node has, skip what is already stored (resume),
fetch the rest, and say what is still missing."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

from viewer.pacs.client import InstanceRef, PacsClient, Want
from viewer.pacs.errors import PacsError
from viewer.pacs.query import check_uid
from viewer.pacs.store import Expect, LocalStore, ProgressCallback, RetrieveReport, Sink


ROUNDS = 2
"""A second round asks again, instance by instance, for what did not arrive (a PACS may stop a C-MOVE at
the first instance we refuse, or a stream may break)."""


def plan(expected: list, have: set[str], whole_study: bool) -> Want:  # type: ignore[type-arg]
    """What to ask for: whole series where nothing of them is stored, single instances otherwise."""
    by_series: dict[str, list[str]] = defaultdict(list)
    todo: dict[str, list[str]] = defaultdict(list)
    for ref in expected:
        by_series[ref.series_uid].append(ref.sop_uid)
        if ref.sop_uid not in have:
            todo[ref.series_uid].append(ref.sop_uid)
    want: dict[str, list[str] | None] = {
        s: (None if len(sops) == len(by_series[s]) else sops) for s, sops in todo.items()
    }
    if whole_study and len(want) == len(by_series) and all(v is None for v in want.values()):
        return None
    return want


def _listing(client: PacsClient, study_uid: str, series_uid: str | None) -> list[InstanceRef]:
    expected = client.list_instances(study_uid, series_uid)
    if not expected:
        what = f"series {series_uid}" if series_uid else f"study {study_uid}"
        raise PacsError(f"{client.node.describe()}: {what} not found (no instances)")
    return expected


def retrieve(client: PacsClient, study_uid: str, series_uid: str | None = None, *, store: LocalStore | None = None,
             progress: ProgressCallback | None = None, cancel: threading.Event | None = None) -> RetrieveReport:
    """Retrieve a study (or one series) into ``store``; never raises for per-instance problems, which go in
    the report's ``errors``; raises :class:`PacsError` when nothing can be done (node unreachable...).

    When nothing of it is stored yet, the whole study/series is asked for at once while the instance list
    is fetched beside it (the first slice does not wait for the list); otherwise the list comes first and
    only what is missing is asked for (resume)."""
    study_uid = check_uid(study_uid, "study UID")
    if series_uid is not None:
        series_uid = check_uid(series_uid, "series UID")
    store = store or LocalStore()
    t0 = time.perf_counter()
    report = RetrieveReport(store.folder(study_uid, series_uid))
    have = store.present(study_uid, series_uid)
    sink = Sink(store, Expect(study_uid, series_uid), report, progress, t0)
    first_round = 0
    if have:
        expected = _listing(client, study_uid, series_uid)
    else:
        box: dict[str, Any] = {}

        def list_beside() -> None:
            try:
                box["refs"] = _listing(client, study_uid, series_uid)
                report.expected = len(box["refs"])
            except PacsError as exc:
                box["error"] = exc

        lister = threading.Thread(target=list_beside, name="pacs-list", daemon=True)
        lister.start()
        try:
            client.fetch(study_uid, None if series_uid is None else {series_uid: None}, sink, cancel)
        except PacsError as exc:
            report.errors.append(str(exc))
        lister.join()
        if "error" in box:
            if not report.stored:
                raise box["error"]
            report.errors.append(f"cannot list the instances, so nothing is known to be missing: {box['error']}")
            report.cancelled = bool(cancel is not None and cancel.is_set())
            return report
        expected = box["refs"]
        first_round = 1
    report.expected = len(expected)
    report.already = sum(1 for ref in expected if ref.sop_uid in have)
    for attempt in range(first_round, ROUNDS):
        if cancel is not None and cancel.is_set():
            break
        if attempt:  # ask again, one by one, for what did not come and was not refused
            have = store.present(study_uid, series_uid) | sink.rejected
        if all(ref.sop_uid in have for ref in expected):
            break
        want = plan(expected, have, whole_study=series_uid is None)
        if attempt:
            want = {s: sops if sops is not None else [r.sop_uid for r in expected if r.series_uid == s]
                    for s, sops in (want or {}).items()}
        try:
            client.fetch(study_uid, want, sink, cancel)
        except PacsError as exc:
            report.errors.append(str(exc))
    report.cancelled = bool(cancel is not None and cancel.is_set())
    after = store.present(study_uid, series_uid)
    report.missing = [ref.sop_uid for ref in expected if ref.sop_uid not in after]
    return report

"""``radscope pacs add|list|remove|echo|find|get|send|listen``: PACS nodes over DIMSE or DICOMweb.

NODE is a saved name or inline: ``dimse://AET@host:port`` or ``http(s)://host/dicom-web``. Passwords and
tokens are read from stdin or the environment (never from the command line, where ``ps`` shows them) and
never printed. Exit codes: 0 done, 1 partial (some instances missing or refused), 2 failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from viewer.pacs.nodes import ENV_PASSWORD, ENV_TOKEN


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser("add", help="save a node: --dimse AET@HOST:PORT or --url URL")
    p.add_argument("name")
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--dimse", metavar="AET@HOST:PORT")
    kind.add_argument("--url", help="DICOMweb root, e.g. https://pacs.example.org/dicom-web")
    p.add_argument("--our-aet", default=None, help="our calling AE title (default RADSCOPE)")
    p.add_argument("--retrieve", choices=["get", "move"], default="get", help="C-GET (default) or C-MOVE")
    p.add_argument("--move-port", type=int, default=None, help="port our storage SCP listens on for C-MOVE (default 11113)")
    p.add_argument("--user", help=f"basic-auth user; the password comes from --password-stdin or ${ENV_PASSWORD}")
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    p.add_argument("--token-stdin", action="store_true", help=f"read a bearer token from stdin (or set ${ENV_TOKEN})")
    p.add_argument("--ca-cert", help="CA bundle (PEM) that signed the node's https certificate")
    p.add_argument("--insecure", action="store_true", help="do not verify the https certificate (test servers only)")
    p.add_argument("--replace", action="store_true", help="overwrite a node of the same name")
    p = sub.add_parser("list", help="saved nodes (credentials never shown)")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("remove", help="forget a saved node")
    p.add_argument("name")
    p = sub.add_parser("echo", help="C-ECHO (DIMSE) or a one-study QIDO-RS search (DICOMweb)")
    p.add_argument("node")
    p = sub.add_parser("find", help="search studies (with their series)")
    p.add_argument("node")
    p.add_argument("--patient-id")
    p.add_argument("--patient-name", help="wildcards allowed: 'DOE*'")
    p.add_argument("--study-date", metavar="RANGE", help="YYYYMMDD, YYYYMMDD-YYYYMMDD, -YYYYMMDD, YYYYMMDD-")
    p.add_argument("--modality")
    p.add_argument("--accession")
    p.add_argument("--description", help="study description")
    p.add_argument("--study", metavar="UID", help="one study by its UID")
    p.add_argument("--limit", type=int, default=None, help="at most this many studies (default 500)")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("get", help="retrieve a study or series (resumes: instances already stored are skipped)")
    p.add_argument("node")
    p.add_argument("--study", required=True, metavar="UID")
    p.add_argument("--series", metavar="UID")
    p.add_argument("--out", help="root folder (default: RADSCOPE_HOME/pacs); files go to OUT/<study>/<series>/")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p = sub.add_parser("send", help="C-STORE (DIMSE) or STOW-RS (DICOMweb) files and folders")
    p.add_argument("node")
    p.add_argument("paths", nargs="+")
    p = sub.add_parser("listen", help="storage SCP: receive studies pushed by a PACS or modality until Ctrl+C")
    p.add_argument("--aet", default="RADSCOPE", help="our AE title (default RADSCOPE)")
    p.add_argument("--port", type=int, default=11112)
    p.add_argument("--bind", default="0.0.0.0", help="address to listen on (default all interfaces)")
    p.add_argument("--allow", action="append", default=[], metavar="AET", help="accept only these calling AE titles")
    p.add_argument("--out", help="root folder (default: RADSCOPE_HOME/pacs)")


def _secret_from_stdin(what: str) -> str:
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise SystemExit(f"radscope pacs add: no {what} on stdin")
    return line


def _add(args: argparse.Namespace) -> int:
    from viewer.pacs.nodes import NodeBook, make_node

    options: dict[str, Any] = {"our_aet": args.our_aet, "retrieve": args.retrieve, "move_port": args.move_port}
    if args.url:
        password = _secret_from_stdin("password") if args.password_stdin else os.environ.get(ENV_PASSWORD)
        token = _secret_from_stdin("token") if args.token_stdin else os.environ.get(ENV_TOKEN)
        if args.user and not password:
            raise SystemExit(f"radscope pacs add: --user needs a password (--password-stdin or ${ENV_PASSWORD})")
        options = {"username": args.user, "password": password if args.user else None,
                   "token": None if args.user else token, "ca_bundle": _ca(args.ca_cert), "verify": not args.insecure}
    node = make_node(args.name, dimse=args.dimse, url=args.url, **options)
    NodeBook().add(node, replace=args.replace)
    print(f"saved {node.describe()}")
    return 0


def _ca(path: str | None) -> str | None:
    if path is None:
        return None
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise SystemExit(f"radscope pacs add: --ca-cert {path}: no such file")
    return str(p)


def _list(args: argparse.Namespace) -> int:
    from viewer.pacs.nodes import NodeBook

    nodes = NodeBook().nodes()
    if args.json:
        doc = []
        for node in nodes.values():
            safe = {k: v for k, v in node.to_json().items() if k not in ("password", "token")}
            safe["name"] = node.name
            doc.append(safe)
        print(json.dumps(doc, indent=1))
    elif not nodes:
        print("no PACS nodes saved (radscope pacs add NAME --dimse AET@HOST:PORT | --url URL)")
    else:
        for node in nodes.values():
            print(node.describe())
    return 0


def _remove(args: argparse.Namespace) -> int:
    from viewer.pacs.nodes import NodeBook

    if NodeBook().remove(args.name):
        print(f"removed {args.name}")
        return 0
    print(f"radscope pacs: no saved node {args.name!r}", file=sys.stderr)
    return 2


def resolve_node(spec: str) -> Any:
    from viewer.pacs.nodes import resolve_with_env

    return resolve_with_env(spec)


def _echo(args: argparse.Namespace) -> int:
    from viewer.pacs import client_for

    node = resolve_node(args.node)
    seconds = client_for(node).echo()
    print(f"{node.describe()}: OK ({seconds * 1000:.0f} ms)")
    return 0


def _find(args: argparse.Namespace) -> int:
    from viewer.pacs import Query, client_for
    from viewer.pacs.query import DEFAULT_STUDY_LIMIT

    query = Query(patient_id=args.patient_id, patient_name=args.patient_name, study_date=args.study_date,
                  modality=args.modality, accession=args.accession, description=args.description,
                  study_uid=args.study, limit=args.limit or DEFAULT_STUDY_LIMIT)
    node = resolve_node(args.node)
    result = client_for(node).find(query)
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
    else:
        for s in result.studies:
            date = f"{s.study_date[:4]}-{s.study_date[4:6]}-{s.study_date[6:]}" if len(s.study_date) == 8 else s.study_date
            print(f"{s.study_uid}  {date or '-'}  {s.patient_name or '-'} ({s.patient_id or '-'})  "
                  f"acc {s.accession or '-'}  {'/'.join(s.modalities) or '-'}  {s.description}")
            for se in s.series:
                n = "?" if se.instances is None else se.instances
                print(f"    {se.series_uid}  #{se.number if se.number is not None else '-'}  {se.modality or '-'}  "
                      f"{n} instance(s)  {se.description}")
        print(f"{len(result.studies)} study(ies)" + (" (list cut at the limit: narrow the search)" if result.truncated else ""))
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def _progress_printer(quiet: bool) -> Any:
    if quiet or not sys.stderr.isatty():
        return None
    lock = threading.Lock()

    def progress(stored: Any, done: int, expected: int | None) -> None:
        with lock:
            print(f"\r{done}/{expected if expected is not None else '?'} instances", end="", file=sys.stderr, flush=True)

    return progress


def _get(args: argparse.Namespace) -> int:
    from viewer.pacs import client_for
    from viewer.pacs.retrieve import retrieve
    from viewer.pacs.store import LocalStore

    node = resolve_node(args.node)
    store = LocalStore(Path(args.out).expanduser() if args.out else None)
    cancel = threading.Event()
    try:
        report = retrieve(client_for(node), args.study, args.series, store=store,
                          progress=_progress_printer(args.quiet), cancel=cancel)
    except KeyboardInterrupt:
        cancel.set()
        raise
    if not args.quiet and sys.stderr.isatty():
        print(file=sys.stderr)
    for e in report.errors[:50]:
        print(f"error: {e}", file=sys.stderr)
    if len(report.errors) > 50:
        print(f"... and {len(report.errors) - 50} more errors", file=sys.stderr)
    if report.missing:
        shown = ", ".join(report.missing[:10]) + (" ..." if len(report.missing) > 10 else "")
        print(f"missing {len(report.missing)} instance(s): {shown}", file=sys.stderr)
        print(f"{report.summary()}", file=sys.stderr)
    print(report.folder)
    return 0 if report.complete else 1


def _send(args: argparse.Namespace) -> int:
    from viewer.pacs import client_for

    node = resolve_node(args.node)
    report = client_for(node).send(args.paths)
    for e in report.errors[:50]:
        print(f"error: {e}", file=sys.stderr)
    print(report.summary(node.describe()))
    if report.sent == 0:
        return 2
    return 0 if not report.errors else 1


def _listen(args: argparse.Namespace) -> int:
    from viewer.pacs.listener import StorageSCP
    from viewer.pacs.store import Expect, LocalStore, RetrieveReport, Sink

    store = LocalStore(Path(args.out).expanduser() if args.out else None)
    report = RetrieveReport(store.root)
    seen: set[Path] = set()
    lock = threading.Lock()

    def progress(stored: Any, done: int, expected: int | None) -> None:
        folder = stored.path.parent
        with lock:
            if folder not in seen:
                seen.add(folder)
                print(f"receiving into {folder}", flush=True)

    def error(message: str) -> None:
        print(f"refused: {message}", file=sys.stderr, flush=True)

    sink = Sink(store, Expect(), report, progress)
    sink.error = error  # type: ignore[method-assign]
    scp = StorageSCP(args.aet, args.port, sink.take_bytes, host=args.bind, allowed_callers=args.allow)
    with scp:
        host, port = scp.address[:2]
        print(f"listening as {scp.ae_title} on {host}:{port}; storing under {store.root} (Ctrl+C stops)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    print(f"received {report.stored} new instance(s)")
    return 0


ACTIONS = {"add": _add, "list": _list, "remove": _remove, "echo": _echo, "find": _find, "get": _get,
           "send": _send, "listen": _listen}


def run(args: argparse.Namespace) -> int:
    from viewer.pacs.errors import PacsError

    try:
        return ACTIONS[args.action](args)
    except PacsError as exc:
        print(f"radscope pacs {args.action}: {exc}", file=sys.stderr)
        return 2

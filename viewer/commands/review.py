"""``radscope review``: add, list, edit, delete, summarise, export and import review flags headlessly."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from viewer.review.model import REGION_KINDS, ModelInfo, Region, Verdict

VERDICT_HELP = ", ".join(v.value for v in Verdict) + " (or 'missed')"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    def add_store(p: argparse.ArgumentParser) -> None:  # accepted before or after ACTION
        p.add_argument("--store", metavar="FILE|URL", default=argparse.SUPPRESS,
                       help="review store: a SQLite file or postgresql://user@host/db (default: "
                            "RADSCOPE_REVIEW_STORE, else RADSCOPE_HOME/review/review.sqlite3)")

    add_store(parser)
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    flag = sub.add_parser("flag", help="flag slice K of a series; prints the flag id once it is saved")
    add_store(flag)
    flag.add_argument("path", help="DICOM file, folder, zip or DICOMDIR holding the series")
    flag.add_argument("--slice", type=int, required=True, metavar="K", help="slice index (0-based, along the normal)")
    flag.add_argument("--label", required=True, help="model label the verdict is about")
    flag.add_argument("--verdict", required=True, help=VERDICT_HELP)
    flag.add_argument("--comment", default="")
    flag.add_argument("--reviewer", help="reviewer name (default: RADSCOPE_REVIEWER, settings.json, login)")
    flag.add_argument("--series", metavar="UID", help="series UID (or stack id) when PATH holds several")
    flag.add_argument("--model", metavar="NAME|PATH", help="model reviewed: a package folder or NAME[@VERSION]")
    flag.add_argument("--method", default="", help="explanation method in force (e.g. gradcam)")
    flag.add_argument("--threshold", type=float, help="decision threshold in force")
    flag.add_argument("--outside-scope", metavar="REASON",
                      help="the results flagged came from a run outside the model's intended use (recorded as "
                           "'outside intended use: REASON' in the flag, its exports and SR)")
    flag.add_argument("--region", metavar="KIND:X,Y[;X,Y...]",
                      help=f"region in pixel coordinates (column,row); KIND one of {', '.join(REGION_KINDS)}")

    lst = sub.add_parser("list", help="list flags")
    add_store(lst)
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.add_argument("--study", metavar="UID", help="only this study")
    lst.add_argument("--all", action="store_true", help="include deleted flags (tombstones)")

    edit = sub.add_parser("edit", help="change a flag (history is kept)")
    add_store(edit)
    edit.add_argument("id")
    edit.add_argument("--verdict", help=VERDICT_HELP)
    edit.add_argument("--label")
    edit.add_argument("--comment")
    edit.add_argument("--reviewer", help="who makes the change")

    delete = sub.add_parser("delete", help="delete a flag (kept as a tombstone with its history)")
    add_store(delete)
    delete.add_argument("id")
    delete.add_argument("--reviewer", help="who deletes it")

    worklist = sub.add_parser("worklist", help="show the worklist; add studies found under paths; set a status")
    add_store(worklist)
    worklist.add_argument("--add", nargs="+", metavar="PATH", help="put every study under PATH on the worklist")
    worklist.add_argument("--add-from", metavar="INFER_DIR",
                          help="put the studies of a `radscope infer --out` folder on the worklist, ranked by what "
                               "most deserves a human look (top score near the threshold, images unlike the "
                               "training data, diffuse heatmaps)")
    worklist.add_argument("--status", nargs=2, metavar=("STUDY_UID", "STATUS"),
                          help="set a study's status: not_started, in_progress or done")

    history = sub.add_parser("history", help="every version of a flag")
    add_store(history)
    history.add_argument("id")

    summary = sub.add_parser("summary", help="verdict counts, rates by group and reviewer agreement")
    add_store(summary)
    summary.add_argument("--json", action="store_true")

    export = sub.add_parser("export", help="write the flags as CSV, JSON or DICOM (KOS + SR per study)")
    add_store(export)
    export.add_argument("--format", required=True, choices=["csv", "json", "dicom"])
    export.add_argument("--out", required=True, metavar="PATH", help="file (csv, json) or folder (dicom)")
    export.add_argument("--heatmaps", metavar="INFER_DIR",
                        help="dicom only: also write the heatmaps of `radscope infer --out INFER_DIR` as Parametric Maps")
    export.add_argument("--source", metavar="PATH", help="the DICOM series the heatmaps were computed on")

    imp = sub.add_parser("import", help="merge a JSON export, or RadScope DICOM SRs (a file or a folder), into "
                                        "the store (idempotent by flag id)")
    add_store(imp)
    imp.add_argument("file", help="a JSON export, an SR file, or a folder of DICOM exports (its SRs are read)")

    migrate = sub.add_parser("migrate", help="copy the store (--store, a SQLite file) into a PostgreSQL store, "
                                             "with every flag's history (idempotent)")
    add_store(migrate)
    migrate.add_argument("--to", required=True, metavar="URL", help="postgresql://user@host/db")

    team = sub.add_parser("init-team", help="set up a PostgreSQL team store: schema, the reviewer and lead roles, "
                                            "row-level security (run once as the database's owner)")
    team.add_argument("url", metavar="URL", help="postgresql://owner@host/db (a role that may create roles)")
    team.add_argument("--lead", nargs="*", default=[], metavar="ROLE", help="roles that may change every flag")
    team.add_argument("--reviewer", nargs="*", default=[], metavar="ROLE",
                      help="roles that may change only their own flags (everyone reads every flag)")


def parse_region(text: str) -> Region:
    """``rectangle:10,20;30,40`` -> a Region (pixel coordinates column,row)."""
    kind, _, points = text.partition(":")
    try:
        pts = [tuple(float(v) for v in p.split(",")) for p in points.split(";") if p.strip()]
        if any(len(p) != 2 for p in pts):
            raise ValueError("each point needs two numbers")
        return Region.make(kind.strip().lower(), pts)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValueError(f"bad --region {text!r}: {exc}") from None


def model_info(spec: str | None) -> ModelInfo:
    """The reviewed model: a package (folder, .zip or MONAI bundle; its card is read, nothing is loaded), or
    NAME[@VERSION] of an installed package (its version and weights sha256 recorded), or of a model not
    installed here (name and version only)."""
    if not spec:
        return ModelInfo()
    from inference import jsonsafe
    from inference.package import MAX_CARD_BYTES, ModelPackageError, read_card
    from inference.registry import find_packages
    from viewer import paths

    if Path(spec).exists():
        try:
            card = read_card(spec)
            return ModelInfo(card.name, card.version, card.weights_sha256())
        except ModelPackageError as exc:
            partial = Path(spec) / "radscope-model.json"  # a card without its weights still names the model
            try:
                data = jsonsafe.read_file(partial, MAX_CARD_BYTES)  # bounded: size before reading, depth
                return ModelInfo(str(data["name"]), str(data.get("version", "")),
                                 str((data.get("weights") or {}).get("sha256", "")))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                raise ValueError(f"cannot read model package {spec}: {exc}") from None
    name, _, version = spec.partition("@")
    for entry in find_packages([paths.resources_dir() / "models", paths.subdir("models")]):
        if entry.card is not None and entry.card.name == name and version in ("", entry.card.version):
            return ModelInfo(name, entry.card.version, entry.card.weights_sha256())
    return ModelInfo(name, version)


def _flag_line(f: Any) -> str:
    where = f"slice {f.slice_index}" + (f" frame {f.frame_number}" if f.frame_number else "")
    dead = " [deleted]" if f.deleted else ""
    return f"{f.id}  {f.verdict.value:<15} {f.label:<12} {where:<10} {f.reviewer:<12} {f.created}{dead}  {f.comment}"


def run(args: argparse.Namespace) -> int:
    from viewer.review.source import SourceError
    from viewer.review.store import ReviewStore, ReviewStoreError
    from viewer.review.tables import ImportFileError

    try:
        if args.action == "init-team":
            return _init_team(args)
        if args.action == "flag":
            # Check what needs no store first, so a typo never opens or creates one.
            verdict = Verdict.parse(args.verdict)
            region = parse_region(args.region) if args.region else None
            model = model_info(args.model)
            if args.slice < 0:
                raise ValueError(f"slice {args.slice} is out of range: slices start at 0")
        with ReviewStore(getattr(args, "store", None)) as store:
            if store.read_only and args.action in _READS:
                print(f"radscope review {args.action}: note: review store {store.location}: {store.read_only}",
                      file=sys.stderr)
            try:
                return _ACTIONS[args.action](store, args, **({"verdict": verdict, "region": region, "model": model}
                                                             if args.action == "flag" else {}))
            finally:
                for problem in store.problems:
                    print(f"radscope review {args.action}: {problem}", file=sys.stderr)
    except (ValueError, KeyError, SourceError, ReviewStoreError, ImportFileError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"radscope review {args.action}: {message}", file=sys.stderr)
        return 2


def _flag(store: Any, args: argparse.Namespace, *, verdict: Verdict, region: Region | None, model: ModelInfo) -> int:
    from dataclasses import replace

    from viewer.review.source import context_at

    context = context_at(args.path, args.slice, args.series, model=model, method=args.method,
                         threshold=args.threshold)
    if args.outside_scope:
        context = replace(context, scope_note=f"outside intended use: {args.outside_scope.strip()}")
    if region is not None and context.columns and context.rows:
        for x, y in region.points_px:
            if not (-0.5 <= x <= context.columns - 0.5 and -0.5 <= y <= context.rows - 0.5):
                raise ValueError(f"region point ({x:g}, {y:g}) lies outside the {context.columns}x{context.rows} image")
    flag_id = store.add_flag(context, verdict, args.label, region=region, comment=args.comment,
                             reviewer=args.reviewer)
    print(flag_id, flush=True)  # printed only after the commit returned: the flag is durable
    return 0


def _list(store: Any, args: argparse.Namespace) -> int:
    flags = store.flags(args.study, include_deleted=args.all)
    if args.json:
        print(json.dumps({"flags": [f.to_dict() for f in flags]}, indent=2))
    else:
        for f in flags:
            print(_flag_line(f))
        done, total = store.progress()
        print(f"{len(flags)} flag(s); {done}/{total} studies done", file=sys.stderr)
    return 0


def _edit(store: Any, args: argparse.Namespace) -> int:
    if args.verdict is None and args.label is None and args.comment is None:
        raise ValueError("nothing to change: give --verdict, --label or --comment")
    flag = store.edit_flag(args.id, verdict=args.verdict, label=args.label, comment=args.comment,
                           actor=args.reviewer)
    print(_flag_line(flag))
    return 0


def _delete(store: Any, args: argparse.Namespace) -> int:
    print(_flag_line(store.delete_flag(args.id, actor=args.reviewer)))
    return 0


def _worklist(store: Any, args: argparse.Namespace) -> int:
    from viewer.review.source import studies_at

    for uid, description, folder, header in studies_at(args.add) if args.add else []:
        store.add_study(uid, description=description, source_path=folder, header=header)
    if args.add_from:
        from viewer.batch.worklist import add_to_worklist

        ranking = add_to_worklist(store, Path(args.add_from))
        for bad, reason in ranking.errors:
            print(f"radscope review: skipped {bad}: {reason}", file=sys.stderr)
    if args.status:
        store.set_status(args.status[0], args.status[1])
    for e in store.worklist():
        on_it = f"  [open: {', '.join(e.reviewers)}]" if e.reviewers else ""
        rank = f"  priority {e.priority:.2f}: {e.priority_reason}" if e.priority is not None else ""
        print(f"{e.position:>4}  {e.status.replace('_', ' '):<12} {e.n_flags:>4} flag(s)  {e.study_uid}  "
              f"{e.description}  {e.source_path}{on_it}{rank}")
    done, total = store.progress()
    print(f"{done}/{total} studies done", file=sys.stderr)
    return 0


def _history(store: Any, args: argparse.Namespace) -> int:
    entries = store.history(args.id)
    if not entries:
        raise KeyError(f"no flag with id {args.id} in {store.location}")
    for h in entries:
        s = h.snapshot
        print(f"{h.at}  {h.action:<7} by {h.actor or '?':<12} {s['verdict']:<15} {s['label']:<12} {s['comment']}")
    return 0


def _summary(store: Any, args: argparse.Namespace) -> int:
    from viewer.review.summary import format_summary, summarize

    summary = summarize(store.flags())
    print(json.dumps(summary.to_dict(), indent=2) if args.json else format_summary(summary))
    return 0


def _export(store: Any, args: argparse.Namespace) -> int:
    if (args.heatmaps is None) != (args.source is None) or (args.heatmaps and args.format != "dicom"):
        raise ValueError("--heatmaps and --source go together, with --format dicom")
    if args.format == "dicom":
        from viewer.review.dicom_export import DicomExportError, export_dicom
        from viewer.review.heatmap_export import export_heatmaps

        try:
            written = export_dicom(store, args.out)
            if args.heatmaps:
                written += export_heatmaps(args.heatmaps, args.source, args.out)
        except DicomExportError as exc:
            raise ValueError(str(exc)) from None
        for f in written:
            print(f"{f.kind}  {f.path}")
        print(f"wrote {len(written)} DICOM object(s) under {args.out}", file=sys.stderr)
        return 0
    from viewer.review.tables import export_csv, export_json

    n = (export_csv if args.format == "csv" else export_json)(store, args.out)
    print(f"wrote {n} flag(s) to {args.out}", file=sys.stderr)
    return 0


def _import(store: Any, args: argparse.Namespace) -> int:
    from viewer.review.sr_import import import_sr, is_dicom_file
    from viewer.review.tables import import_json

    if is_dicom_file(args.file):
        outcome, skipped = import_sr(store, args.file)
        for message in skipped:
            print(message, file=sys.stderr)
    else:
        outcome = import_json(store, args.file)
    print(", ".join(f"{k} {outcome.get(k, 0)}" for k in ("added", "updated", "unchanged")))
    return 0


def _migrate(store: Any, args: argparse.Namespace) -> int:
    from viewer.review.store import ReviewStore, is_postgres_url

    if not is_postgres_url(args.to):
        raise ValueError(f"--to must be a PostgreSQL URL (postgresql://user@host/db), not {args.to!r}")
    with ReviewStore(args.to) as target:
        counts = target.copy_from(store)
        print(f"{store.location} -> {target.location}: " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                                                     for k, v in counts.items()))
        store.problems = target.problems  # unreadable source rows, named once by run()
    return 0


def _init_team(args: argparse.Namespace) -> int:
    from viewer.review.team import init_team

    for line in init_team(args.url, leads=args.lead, reviewers=args.reviewer):
        print(line)
    return 0


_READS = {"list", "history", "summary", "export", "worklist"}
_ACTIONS = {"flag": _flag, "list": _list, "edit": _edit, "delete": _delete, "history": _history, "worklist": _worklist,
            "summary": _summary, "export": _export, "import": _import, "migrate": _migrate}

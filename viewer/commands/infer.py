"""``radscope infer PATH ... --out DIR``: run a model over series, write scores.json and heatmaps.

Per stack: ``DIR/<series_uid>/scores.json`` and one ``heatmap_<label>.nii.gz`` per label (float32 in
[0, 1]) on exactly the geometry ``radscope convert`` writes (tilted volumes resampled the same way).
Without ``--series`` every stack found is inferred; a series split into several stacks writes the
extra ones under their stack ids. Without ``--model`` each series gets the installed model offered
for its modality. Results are cached under ``RADSCOPE_HOME/cache`` by (stack, model sha256, method).
Slices reach the model as :func:`viewer.ai.model_input.model_input` gives them (MONOCHROME1 inverted
over its stored range, as in the viewer). A series no installed model is offered for is skipped with a
message. Progress goes to stderr.
``--engine ray`` runs the same work on Ray (a local instance, or ``--address``), one model per actor;
both engines write the same files (:mod:`viewer.batch`). A rerun skips every series whose folder already
holds a ``scores.json`` for the same model sha256, method, input rule and slices; series that fail are
listed with their reason in ``DIR/errors.json`` and the rest go on.
Intended use: a series outside the model's rules (card ``scope``, `viewer.ai.scope`) or mostly out of
distribution (card ``ood``) is skipped with nothing written and ``<series uid>: outside <model>'s intended
use: <reason>`` on stderr; ``--force`` runs it and writes ``in_scope: false``. A 2D model whose card
allows reformats runs on reformats to its plane; heatmaps come back on the acquired grid. Heatmaps are
what the viewer shows (``--heatmap-scale series``: each slice's map times its score, one scale for the
series) unless ``--heatmap-scale slice`` asks for each slice scaled to its own maximum.
Without ``--model``, a package that cannot be loaded (refused weights, wrong shapes) fails its own series
with the reason (``errors.json``) and the other packages' series still run; with it, the run stops (exit 2).
Exit codes: 0 something written (or already done); 1 no usable series; 2 bad model or method, or
no model for any series; 3 every series was outside the model's intended use.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inference.package import ModelCard
    from viewer.batch.engines import LocalEngine, RayEngine
    from viewer.batch.series import SeriesJob, SeriesOutcome
    from viewer.dicom import Stack


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="DICOM files, folders, .zip archives or DICOMDIRs")
    parser.add_argument("--model", metavar="NAME|PATH", help="installed model name or package path "
                        "(default: the installed model offered for each series' modality)")
    parser.add_argument("--series", metavar="UID", help="only this series UID (its largest stack) or stack id")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    parser.add_argument("--explain", metavar="METHOD", default="default",
                        help="gradcam, gradcam++, layercam, hirescam, integrated-gradients or none "
                             "(default: the model's first supported method)")
    parser.add_argument("--batch-size", type=int, metavar="N", help="slices per batch (default: from the device)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the results cache")
    parser.add_argument("--redo", action="store_true",
                        help="run every series again, even those whose results in DIR are already complete")
    parser.add_argument("--force", action="store_true",
                        help="also run series outside the model's intended use (scores.json says in_scope: false)")
    parser.add_argument("--heatmap-scale", choices=("series", "slice"), default="series",
                        help="series: map x slice score, one scale for the series, as the viewer shows it "
                             "(default); slice: each slice scaled to its own maximum")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: this process (default); ray: one model per Ray actor")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="Ray actors (default: one per GPU, else one per CPU)")
    parser.add_argument("--address", metavar="ADDR", help="join this Ray cluster instead of starting one here")
    pacs = parser.add_argument_group("PACS inputs (the studies a query finds, retrieved first into the local "
                                     "PACS store under RADSCOPE_HOME; resumable)")
    pacs.add_argument("--pacs", metavar="NODE", help="a saved node name or dimse://AET@host:port / http(s)://...")
    pacs.add_argument("--pacs-study", action="append", metavar="UID", help="this study (repeatable; no query)")
    pacs.add_argument("--pacs-modality", metavar="M")
    pacs.add_argument("--pacs-study-date", metavar="RANGE", help="YYYYMMDD, YYYYMMDD-YYYYMMDD, -YYYYMMDD ...")
    pacs.add_argument("--pacs-patient-id", metavar="ID")
    pacs.add_argument("--pacs-accession", metavar="A")
    pacs.add_argument("--pacs-limit", type=int, default=500, metavar="N", help="at most N studies (default 500)")
    parser.add_argument("--worklist", action="store_true",
                        help="put the series of DIR on the review worklist, ranked by what most deserves a human "
                             "look (the default review store, or RADSCOPE_REVIEW_STORE)")


def _say(msg: str) -> None:
    print(f"radscope infer: {msg}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from viewer.batch.engines import LocalEngine, RayEngine, RunOptions

    if args.batch_size is not None and args.batch_size < 1:
        _say("--batch-size must be at least 1")
        return 2
    if args.workers is not None and args.workers < 1:
        _say("--workers must be at least 1")
        return 2
    options = RunOptions(device=args.device, batch_size=args.batch_size, explain=args.explain,
                         model_errors_fatal=bool(args.model),
                         use_cache=not args.no_cache, heatmap_scale=args.heatmap_scale)
    if args.engine == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            _say("--engine ray needs Ray: pip install 'radscope[ray]'")
            return 2
        with RayEngine(options, _say, workers=args.workers, address=args.address) as engine:
            return _run(args, engine)
    return _run(args, LocalEngine(options, _say))


def _run(args: argparse.Namespace, engine: LocalEngine | RayEngine) -> int:
    from inference.cache import INPUT_RULE, stack_key
    from inference.package import ModelPackageError
    from inference.registry import choose_package, find_packages
    from viewer import paths
    from viewer.ai.scope import scope_of_stack
    from viewer.batch.engines import ModelLoadError
    from viewer.batch.ledger import ErrorsLog, done_record
    from viewer.batch.progress import RunProgress
    from viewer.batch.series import SeriesJob, SeriesOutcome, model_key, output_folder, resolve_method
    from viewer.dicom.scan import assemble
    from viewer.dicom.sources import collect

    inputs = list(args.paths)
    if args.pacs:
        from viewer.batch.pacs_input import retrieve_for_inference
        from viewer.commands.pacs import resolve_node
        from viewer.pacs import PacsError

        try:
            got = retrieve_for_inference(resolve_node(args.pacs), studies=args.pacs_study, modality=args.pacs_modality,
                                         study_date=args.pacs_study_date, patient_id=args.pacs_patient_id,
                                         accession=args.pacs_accession, limit=args.pacs_limit, say=_say)
        except PacsError as exc:
            _say(str(exc))
            return 1
        for problem in got.problems:
            _say(problem)
        inputs += got.folders
    if not inputs:
        _say("nothing to infer: give PATHs or --pacs NODE" if not args.pacs else "no study retrieved")
        return 1
    args.paths = inputs
    sources = collect(inputs)
    slices, errors = engine.parse(sources.files)
    result = assemble(sources, slices, errors)
    for err in result.errors:
        _say(f"skipped {err.path}: {err.error}")
    if args.series:
        stack = result.find(args.series)
        stacks = [stack] if stack is not None else []
    else:
        stacks = list(result.stacks)
    if not stacks:
        _say(f"no {'series ' + args.series if args.series else 'image series'} found")
        return 1
    entries = find_packages([paths.resources_dir() / "models", paths.subdir("models")])
    out_root = Path(args.out)
    cards: dict[str, ModelCard] = {}
    jobs: list[SeriesJob] = []
    skipped: list[SeriesOutcome] = []
    no_model = 0
    for stack in stacks:
        label = stack.stack_id
        try:
            card = choose_package(entries, args.model, stack.info.modality)
        except ModelPackageError as exc:
            if args.model:  # the model asked for is unusable: nothing else can run
                _say(str(exc))
                return 2
            _say(f"{label}: {exc}; skipped")
            no_model += 1
            continue
        key = model_key(card)
        method = resolve_method(card, args.explain)
        decision = scope_of_stack(card, stack)
        if not decision.in_scope and not args.force:
            skipped.append(SeriesOutcome(stack.stack_id, stack.info.series_uid, "out_of_scope", stack.n_slices,
                                         reason=f"outside {card.name}'s intended use: {decision.reason_text}"))
            continue
        cards[key] = card
        job = SeriesJob(stack=_portable(stack), folder=output_folder(stack, bool(args.series)), model_key=key,
                        stack_key=stack_key(stack.stack_id, stack.sop_instance_uids),
                        source=_source_of(stack, args.paths), scope=decision, force=args.force)
        done = None if args.redo else done_record(out_root / job.folder, sha256=card.weights.sha256 or "",
                                                  method=method, input_rule=INPUT_RULE, stack_key=job.stack_key)
        if done is not None and done.get("heatmap_scale", "slice") == args.heatmap_scale:
            skipped.append(SeriesOutcome(stack.stack_id, stack.info.series_uid, "skipped", stack.n_slices,
                                         reason="already done", folder=job.folder))
            continue
        jobs.append(job)
    progress = RunProgress(len(jobs) + len(skipped), sum(j.n_slices for j in jobs) + sum(o.n_slices for o in skipped))
    log = ErrorsLog(out_root)
    outcomes: list[SeriesOutcome] = []

    def on_outcome(outcome: SeriesOutcome) -> None:
        outcomes.append(outcome)
        for warning in outcome.warnings:
            _say(warning)
        if outcome.status == "out_of_scope":
            reason = outcome.reason
            if not reason.startswith("outside "):
                reason = f"outside {model_names.get(outcome.stack_id, 'the model')}'s intended use: {reason}"
            print(f"{outcome.stack_id}: {reason}", file=sys.stderr, flush=True)
        if outcome.status == "failed":
            _say(f"{outcome.stack_id}: {outcome.reason}")
            log.add(outcome)
        progress.add(outcome)

    model_names = {job.stack.stack_id: cards[job.model_key].name for job in jobs}
    for outcome in skipped:
        if outcome.status == "skipped":
            _say(f"{outcome.stack_id}: already done for this model, method and input; skipped")
        on_outcome(outcome)
    try:
        engine.run(jobs, cards, out_root, on_outcome)
    except ModelLoadError as exc:
        _say(str(exc))
        return 2
    log.finish()
    _say(progress.summary())
    if args.worklist:
        from viewer.batch.worklist import add_to_worklist
        from viewer.review.store import ReviewStore, ReviewStoreError

        try:
            with ReviewStore() as store:
                ranking = add_to_worklist(store, out_root)
        except ReviewStoreError as exc:
            _say(f"worklist: {exc}")
            return 1
        for folder, reason in ranking.errors:
            _say(f"worklist: skipped {folder}: {reason}")
        _say(f"worklist: {len(ranking.studies())} studies ranked into {store.location}")
    if any(o.status in ("done", "cached", "skipped") for o in outcomes):
        return 0
    if no_model:
        return 2
    return 3 if outcomes and all(o.status == "out_of_scope" for o in outcomes) else 1


def _source_of(stack: Stack, inputs: list[str]) -> str:
    """The input path a stack's first file lies under (an archive's own path for its extracted members)."""
    first = Path(stack.files[0]).resolve() if stack.files else None
    for given in inputs:
        root = Path(given).resolve()
        if first is not None and (first == root or root in first.parents):
            return str(root)
    return str(Path(inputs[0]).resolve()) if len(inputs) == 1 else ""


def _portable(stack: Stack) -> Stack:
    """The stack without what keeps extracted archives alive (the caller's ScanResult does that)."""
    from dataclasses import replace

    return replace(stack, keep_alive=None)

"""The ``radscope`` command.

``radscope [PATH ...]`` opens the viewer; ``radscope SUBCOMMAND ...`` runs one of the headless
commands registered in :data:`SUBCOMMANDS`. Each subcommand lives in its own module under
``viewer.commands`` exposing ``add_arguments(parser)`` and ``run(args) -> int``; modules are
imported only when their command runs, so ``radscope info`` never loads Qt or torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module under viewer.commands, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "info": ("info", "list the series found in files, folders, zips or DICOMDIRs"),
    "convert": ("convert", "write a series as NIfTI, NRRD, MHA or NPZ with its true geometry"),
    "infer": ("infer", "run a model over series and write scores and heatmaps"),
    "models": ("models", "list installed model packages"),
    "review": ("review", "add, list, export and import review flags"),
    "pacs": ("pacs", "PACS nodes: echo, find, get, send over DIMSE or DICOMweb; listen for pushed studies"),
    "demo": ("demo", "open the bundled demo study with the bundled model"),
    "self-test": ("self_test", "run the demo offscreen and check it (also: radscope --self-test)"),
}
ALIASES = {"--self-test": "self-test"}


def _build_parser(name: str) -> argparse.ArgumentParser:
    module_name, help_text = SUBCOMMANDS[name]
    parser = argparse.ArgumentParser(prog=f"radscope {name}", description=help_text)
    module = importlib.import_module(f"viewer.commands.{module_name}")
    module.add_arguments(parser)
    parser.set_defaults(_run=module.run)
    return parser


def _open_parser() -> argparse.ArgumentParser:
    from viewer.commands import open_viewer

    lines = "\n".join(f"  {n:<9} {h}" for n, (_, h) in SUBCOMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="radscope",
        description="RadScope: a radiology viewer with an AI overlay (not for diagnostic use).",
        epilog=f"commands (radscope COMMAND --help):\n{lines}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    open_viewer.add_arguments(parser)
    parser.set_defaults(_run=open_viewer.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in ALIASES:
        args_list[0] = ALIASES[args_list[0]]
    if args_list and args_list[0] in SUBCOMMANDS:
        parser = _build_parser(args_list[0])
        args = parser.parse_args(args_list[1:])
    else:
        parser = _open_parser()
        args = parser.parse_args(args_list)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("radscope: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``radscope [PATH ...]``: open the viewer window (replaced by the Qt viewer as it lands)."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", help="DICOM files, folders, .zip archives or DICOMDIRs")
    parser.add_argument("--screenshot", metavar="FILE.png", help="render the window offscreen, save, exit")
    parser.add_argument("--panel", metavar="NAME", help="open a named side panel first (tags, ai, layers, review)")
    parser.add_argument("--model", metavar="NAME|PATH", help="model package to run on the opened series")


def run(args: argparse.Namespace) -> int:
    print("radscope: the viewer window is not built yet; try `radscope info PATH --json`", file=sys.stderr)
    return 2

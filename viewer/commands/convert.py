"""``radscope convert PATH ... OUT [--series UID] [--compress]``: write one series as .nii.gz/.nrrd/.mha/.npz.

The volume keeps its true physical geometry, missing slices included (see :mod:`viewer.dicom.writers`
and :mod:`viewer.dicom.grid`); integral modality values are written as the integers they are. ``--series`` takes a
series UID (the largest stack of that series) or a stack id as listed by ``radscope info``; without
it the largest stack found is written. Exit codes: 0 written, 1 nothing to write, 2 bad output name.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="DICOM files, folders, .zip archives or DICOMDIRs")
    parser.add_argument("out", metavar="OUT", help="output file: .nii.gz, .nrrd, .mha or .npz")
    parser.add_argument("--series", metavar="UID", help="series UID (largest stack) or stack id to write")
    parser.add_argument("--compress", action="store_true",
                        help="compress .mha/.nrrd/.npz too (default: uncompressed; .nii.gz is always compressed)")


def run(args: argparse.Namespace) -> int:
    from viewer.dicom import DicomFileError, load_volume, scan
    from viewer.dicom.writers import output_format, write_volume

    try:
        output_format(args.out)
    except ValueError as exc:
        print(f"radscope convert: {exc}", file=sys.stderr)
        return 2
    result = scan(args.paths)
    for err in result.errors:
        print(f"radscope convert: skipped {err.path}: {err.error}", file=sys.stderr)
    stack = result.find(args.series)
    if stack is None:
        what = f"series {args.series}" if args.series else "image series"
        print(f"radscope convert: no {what} found", file=sys.stderr)
        return 1
    try:
        vol = load_volume(stack, integers=True)  # stored integers stay integers when the rescale is integral
    except DicomFileError as exc:
        print(f"radscope convert: {exc}", file=sys.stderr)
        return 1
    for warning in vol.warnings:
        print(f"radscope convert: warning: {warning}", file=sys.stderr)
    try:
        path = write_volume(vol, args.out, compress=args.compress or None)
    except OSError as exc:
        print(f"radscope convert: cannot write {args.out}: {exc}", file=sys.stderr)
        return 1
    k, j, i = vol.shape
    print(f"wrote {path} ({k}x{j}x{i}, spacing {', '.join(f'{v:g}' for v in vol.spacing_zyx)} mm, {stack.stack_id})")
    return 0

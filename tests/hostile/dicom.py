"""Hostile DICOM folders: a good series plus bad files beside it (``bad``: the names that must be errors)."""

from __future__ import annotations

from pathlib import Path

from pydicom.uid import generate_uid

from tests.hostile import Outcome, case
from tests.hostile._dicom import (
    corrupt_duplicate,
    corrupt_j2k,
    deeply_nested,
    deflate_bomb,
    enhanced_ct,
    extend_series,
    good_series,
    rewrite,
    set_raw,
    unreadable_file,
)


@case("dicom-truncated-pixels", "dicom", mentions=("truncated",), good=1, bad=("bad.dcm",))
def truncated_pixels(folder: Path) -> Path:
    files = good_series(folder)
    data = files[0].read_bytes()
    (folder / "bad.dcm").write_bytes(data[: len(data) - 100])
    return folder


@case("dicom-corrupt-j2k", "dicom", mentions=("JPEG 2000",), good=1, bad=("corrupt_j2k.dcm",))
def corrupt_j2k_beside_good_series(folder: Path) -> Path:
    """A garbled JPEG 2000 codestream (python-gdcm aborts on it) beside a good series."""
    good_series(folder, rows=64, cols=64)
    corrupt_j2k(folder / "corrupt_j2k.dcm")
    return folder


DEGENERATE_ORIENTATIONS = {
    "zeros": ([0.0] * 6, "zero vector"),
    "nan": ([float("nan")] * 6, "finite"),
    "parallel": ([1.0, 0.0, 0.0, 1.0, 0.0, 0.0], "parallel"),
    "nonunit": ([5.0, 3.0, 0.0, 0.0, 7.0, 1e-9], "unit"),
    "skewed": ([1.0, 0.0, 0.0, 0.5, 0.8660254, 0.0], "perpendicular"),
}


def _degenerate(name: str, iop: list[float], reason: str) -> None:
    @case(f"dicom-orientation-{name}", "dicom", mentions=("ImageOrientationPatient", reason), good=1,
          bad=("bad_0.dcm", "bad_1.dcm"))
    def build(folder: Path) -> Path:
        """Two slices of a good series with a degenerate orientation: per-file errors, the rest loads."""
        extend_series(good_series(folder), folder, 2, ImageOrientationPatient=iop)
        return folder


for _name, (_iop, _reason) in DEGENERATE_ORIENTATIONS.items():
    _degenerate(_name, _iop, _reason)


ABSURD_VALUES = {
    "position-infinity": ("ImagePositionPatient", b"Infinity\\0\\0", "finite"),
    "position-nan": ("ImagePositionPatient", b"NaN\\NaN\\NaN", "finite"),
    "position-1e300": ("ImagePositionPatient", b"1e300\\0\\0", "beyond"),
    "spacing-infinity": ("PixelSpacing", b"Infinity\\0.8", "PixelSpacing"),
    "spacing-1e300": ("PixelSpacing", b"1e300\\1e300", "PixelSpacing"),
    "spacing-nan": ("PixelSpacing", b"NaN\\NaN", "PixelSpacing"),
    "thickness-1e300": ("SliceThickness", b"1e300", "SliceThickness"),
    "thickness-infinity": ("SliceThickness", b"-Infinity", "SliceThickness"),
}


def _absurd(name: str, keyword: str, raw: bytes, reason: str) -> None:
    @case(f"dicom-absurd-{name}", "dicom", outcome="warning", mentions=(keyword, reason, "ignored"), good=2)
    def build(folder: Path) -> Path:
        """A file whose geometry value is infinite, NaN or absurd beside a good series: it loads on its own
        with a warning naming the attribute, never NaN or infinity in the geometry."""
        good_series(folder)
        set_raw(good_series(folder / "odd", n=1, prefix="odd")[0], **{keyword: raw})
        return folder


for _name, (_keyword, _raw, _reason) in ABSURD_VALUES.items():
    _absurd(_name, _keyword, _raw, _reason)


@case("dicom-broken-symlink", "dicom", mentions=("broken symbolic link",), good=1, bad=("gone.dcm",))
def broken_symlink(folder: Path) -> Path:
    good_series(folder)
    (folder / "gone.dcm").symlink_to(folder / "missing-target.dcm")
    return folder


@case("dicom-symlink-loop", "dicom", mentions=("symbolic link",), good=1, bad=("loop_a.dcm",))
def symlink_loop(folder: Path) -> Path:
    good_series(folder)
    (folder / "loop_a.dcm").symlink_to(folder / "loop_b.dcm")
    (folder / "loop_b.dcm").symlink_to(folder / "loop_a.dcm")
    return folder


@case("dicom-fifo", "dicom", mentions=("FIFO",), good=1, bad=("pipe.dcm",))
def fifo(folder: Path) -> Path:
    """A named pipe: opening it would block the scan forever."""
    import os

    good_series(folder)
    os.mkfifo(folder / "pipe.dcm")
    return folder


@case("dicom-unreadable", "dicom", mentions=("cannot read file",), good=1, bad=("unreadable.dcm",))
def unreadable(folder: Path) -> Path:
    """A file the user cannot read (permission denied): named in the errors, never silently skipped."""
    import pytest

    files = good_series(folder)
    if unreadable_file(folder / "unreadable.dcm", files[0]) is None:
        pytest.skip("no way to make an unreadable file here (root without a write-only sysfs attribute)")
    return folder


@case("dicom-deflate-bomb-header", "dicom", mentions=("deflate bomb",), good=1, bad=("bomb.dcm",))
def deflate_bomb_header(folder: Path) -> Path:
    """A 1 MB deflated file whose header inflates to 1 GiB (a private element of zeros)."""
    good_series(folder)
    deflate_bomb(folder / "bomb.dcm", where="private")
    return folder


@case("dicom-deflate-bomb-pixels", "dicom", mentions=("deflate bomb",), good=1, bad=("bomb.dcm",))
def deflate_bomb_pixels(folder: Path) -> Path:
    """A 1 MB deflated 16x16 image whose pixel data element inflates to 1 GiB."""
    good_series(folder)
    deflate_bomb(folder / "bomb.dcm", where="pixels")
    return folder


@case("dicom-duplicate-corrupt", "dicom", outcome="warning", mentions=("a_dup.dcm", "used instead"), good=1)
def duplicate_corrupt(folder: Path) -> Path:
    """Two files at one position, the one sorted first undecodable: the good duplicate fills the slice."""
    files = good_series(folder)
    corrupt_duplicate(files[1], folder / "a_dup.dcm")  # "a_" sorts before "good_": it is the one kept first
    return folder


@case("dicom-deflate-bomb-long-meta", "dicom", mentions=("deflate bomb",), good=1, bad=("bomb.dcm",))
def deflate_bomb_long_meta(folder: Path) -> Path:
    """The header bomb behind a 64 KiB file meta header (private information)."""
    good_series(folder)
    deflate_bomb(folder / "bomb.dcm", where="private", long_meta=True)
    return folder


@case("dicom-first-slice-spacing-infinite", "dicom", outcome="warning", mentions=("PixelSpacing", "differs"), good=1)
def first_slice_spacing_infinite(folder: Path) -> Path:
    """The slice sorted first has PixelSpacing Infinity: the stack keeps the spacing the other slices give."""
    files = good_series(folder)
    set_raw(files[0], PixelSpacing=b"Infinity\\Infinity")
    return folder


PIXEL_MODULE: dict[str, tuple[dict[str, object], Outcome, tuple[str, ...], int]] = {
    # name: (attributes of a one-file series beside the good one, outcome, words the error/warning holds,
    #        stacks that load: 1 = only the good series, 2 = the odd file too)
    "rows-0": ({"Rows": 0}, "error", ("image size",), 1),
    "columns-0": ({"Columns": 0}, "error", ("image size",), 1),
    "bits-allocated-0": ({"BitsAllocated": 0}, "error", ("BitsAllocated",), 1),
    "bits-allocated-13": ({"BitsAllocated": 13}, "error", ("BitsAllocated",), 1),
    "bits-allocated-64": ({"BitsAllocated": 64, "BitsStored": 64, "HighBit": 63}, "error", ("promises",), 1),
    "samples-4": ({"SamplesPerPixel": 4}, "error", ("SamplesPerPixel",), 1),
    "frames-negative": ({"NumberOfFrames": -3}, "error", ("NumberOfFrames",), 1),
    "frames-huge": ({"NumberOfFrames": 2**31 - 1}, "error", ("promises",), 1),
    "photometric-garbage": ({"PhotometricInterpretation": "BANANA"}, "error", ("Photometric",), 1),
    "palette-without-lut": ({"PhotometricInterpretation": "PALETTE COLOR"}, "error", ("cannot convert",), 1),
    "ybr-on-one-sample": ({"PhotometricInterpretation": "YBR_FULL"}, "error", ("cannot decode",), 1),
    "slope-1e300": ({"RescaleSlope": 1e300}, "error", ("RescaleSlope", "refused"), 1),
    "slope-overflow": ({"RescaleSlope": "1e400"}, "warning", ("RescaleSlope", "ignored"), 2),
    "slope-zero": ({"RescaleSlope": 0}, "warning", ("RescaleSlope", "zero"), 2),
    "intercept-nan": ({"RescaleIntercept": "nan"}, "warning", ("RescaleIntercept", "ignored"), 2),
    "window-nan": ({"WindowCenter": "nan", "WindowWidth": "inf"}, "loads", (), 2),
    "window-zero-width": ({"WindowCenter": 0, "WindowWidth": 0}, "loads", (), 2),
    "samples-0": ({"SamplesPerPixel": 0}, "loads", (), 2),
    "frames-0": ({"NumberOfFrames": 0}, "loads", (), 2),
    "pixel-representation-2": ({"PixelRepresentation": 2}, "loads", (), 2),
    "planar-5": ({"PlanarConfiguration": 5}, "loads", (), 2),
    "high-bit-40": ({"HighBit": 40}, "loads", (), 2),
    "bits-stored-40": ({"BitsStored": 40}, "loads", (), 2),
}


def _pixel_module(name: str, changes: dict[str, object], outcome: Outcome, words: tuple[str, ...], good: int) -> None:
    @case(f"dicom-pixel-{name}", "dicom", outcome=outcome, mentions=words, good=good,
          bad=("odd.dcm",) if outcome == "error" else ())
    def build(folder: Path) -> Path:
        """A one-file series with an odd pixel-module or rescale value beside a good series: refused by name,
        or loaded with a warning, never a crash, NaN or infinity."""
        from pydicom.config import settings

        files = good_series(folder)
        mode = settings.writing_validation_mode
        settings.writing_validation_mode = 0  # pydicom would refuse to write some of these values
        try:
            rewrite(files[0], folder / "odd.dcm", SeriesInstanceUID=generate_uid(), **changes)
        finally:
            settings.writing_validation_mode = mode
        return folder


for _name, (_changes, _outcome, _words, _good) in PIXEL_MODULE.items():
    _pixel_module(_name, _changes, _outcome, _words, _good)


@case("dicom-enhanced-orientation-zeros", "dicom", mentions=("ImageOrientationPatient", "zero vector"), good=1,
      bad=("enhanced.dcm",))
def enhanced_orientation_zeros(folder: Path) -> Path:
    """An Enhanced CT whose shared orientation is all zeros: the file is an error, the good series loads."""
    good_series(folder)
    enhanced_ct(folder / "enhanced.dcm", orientation=[0.0] * 6)
    return folder


@case("dicom-enhanced-frame-position-nan", "dicom", outcome="warning", mentions=("ImagePositionPatient", "ignored"),
      good=3)
def enhanced_frame_position_nan(folder: Path) -> Path:
    """An Enhanced CT with one frame at NaN: the other frames form their stack, that frame stands alone."""
    good_series(folder)
    nan = float("nan")
    enhanced_ct(folder / "enhanced.dcm", positions=[[-10.0, -12.0, 0.0], [nan, nan, nan], [-10.0, -12.0, 4.0],
                                                     [-10.0, -12.0, 6.0]])
    return folder


@case("dicom-nested-5000", "dicom", mentions=("unreadable DICOM header",), good=1, bad=("deep.dcm",))
def nested_5000(folder: Path) -> Path:
    """A header with a sequence nested 5000 levels deep: the file is refused (pydicom recurses), not the scan."""
    files = good_series(folder)
    deeply_nested(files[0], folder / "deep.dcm")
    return folder

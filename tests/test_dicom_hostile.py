"""Hostile input: truncated, short, absurd, wrong-VR, empty and garbage files; fuzzed headers.

Each must give a clear per-file error (or be skipped as not DICOM), never crash, hang or allocate
more than the file could hold.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless

from tests.conftest import pydicom_data_file, pydicom_test_file
from tests.test_dicom_factory import write_series
from viewer.dicom import DicomFileError, load_volume, scan
from viewer.dicom.errors import NotDicomError
from viewer.dicom.headers import parse_header


@pytest.fixture
def one_file(tmp_path: Path) -> Path:
    truth = write_series(tmp_path / "src", n=1, rows=32, cols=32, shuffle=False)
    return truth.files[0]


def _scan_one(path: Path) -> str:
    """The error message scan gives for ``path`` (asserting it names the file)."""
    result = scan([path])
    assert result.stacks == []
    [err] = result.errors
    assert err.path == str(path)
    return err.error


def _rewrite(src: Path, dst: Path, **changes: object) -> Path:
    ds = pydicom.dcmread(src)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.save_as(dst)
    return dst


def test_truncated_file(one_file: Path, tmp_path: Path) -> None:
    data = one_file.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: len(data) - 700])
    assert "truncated" in _scan_one(cut)
    cut.write_bytes(data[:300])  # inside the header
    result = scan([cut])
    assert result.stacks == [] and all(e.path == str(cut) for e in result.errors)


def test_pixel_data_shorter_than_promised(one_file: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(one_file)
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    ds.save_as(tmp_path / "short.dcm")
    message = _scan_one(tmp_path / "short.dcm")
    assert "shorter" in message or "promises" in message


def test_absurd_size_is_refused_without_allocating(one_file: Path, tmp_path: Path) -> None:
    bad = _rewrite(one_file, tmp_path / "huge.dcm", Rows=65535, Columns=65535, NumberOfFrames=99999)
    tracemalloc.start()
    t0 = time.perf_counter()
    message = _scan_one(bad)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "promises" in message or "absurd" in message
    assert peak < 50e6 and time.perf_counter() - t0 < 5


def test_absurd_compressed_header(one_file: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(one_file)
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\x00" * 60])
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.NumberOfFrames = 50000
    ds.Rows = ds.Columns = 4000
    ds.save_as(tmp_path / "bomb.dcm")
    assert "promises" in _scan_one(tmp_path / "bomb.dcm")


def test_corrupt_compressed_stream_fails_at_load_with_file_named(one_file: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(one_file)
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\x00" * 600])
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.save_as(tmp_path / "corrupt.dcm")
    [stack] = scan([tmp_path / "corrupt.dcm"]).stacks
    with pytest.raises(DicomFileError) as info:
        load_volume(stack)
    assert info.value.path == str(tmp_path / "corrupt.dcm") and "JPEG 2000" in info.value.reason


def test_wrong_vrs(one_file: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(one_file)
    ds["Rows"].VR = "LO"
    ds.Rows = "abc"
    ds.save_as(tmp_path / "rows.dcm")
    assert "image size" in _scan_one(tmp_path / "rows.dcm")
    ds = pydicom.dcmread(one_file)
    ds["ImagePositionPatient"].VR = "LO"
    ds.ImagePositionPatient = "x\\y"
    ds["RescaleSlope"].VR = "LO"
    ds.RescaleSlope = "not a number"
    ds.save_as(tmp_path / "pos.dcm")
    [stack] = scan([tmp_path / "pos.dcm"]).stacks
    vol = load_volume(stack)  # no position: a 2D image; bad slope: 1
    assert vol.shape == (1, 32, 32) and np.allclose(vol.origin, 0)


def test_empty_and_garbage_files(tmp_path: Path) -> None:
    (tmp_path / "empty.dcm").write_bytes(b"")
    (tmp_path / "garbage.dcm").write_bytes(b"\x00" * 128 + b"DICM" + bytes(range(256)) * 4)
    (tmp_path / "notes.txt").write_text("not dicom at all")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    result = scan([tmp_path])
    assert result.stacks == []
    assert sorted(Path(e.path).name for e in result.errors) == ["empty.dcm", "garbage.dcm"]


FUZZ_BASES = ["generated", "CT_small.dcm", "MR_small_implicit.dcm", "emri_small.dcm", "MR_small_RLE.dcm"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_headers_never_crash(one_file: Path, tmp_path: Path, data: st.DataObject) -> None:
    """Random byte changes and truncations in real and generated headers (explicit and implicit VR,
    sequences, multi-frame, RLE): a per-file error or a load, never a crash, hang or huge array."""
    base = data.draw(st.sampled_from(FUZZ_BASES))
    if base == "generated":
        source = one_file
    elif base == "emri_small.dcm":
        source = pydicom_data_file(base)
    else:
        source = pydicom_test_file(base)
    raw = bytearray(source.read_bytes())
    header_end = max(140, len(raw) - 2048)
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(132, header_end - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    path = tmp_path / "fuzz.dcm"
    path.write_bytes(bytes(raw))
    t0 = time.perf_counter()
    try:
        parse_header(str(path))
    except (NotDicomError, DicomFileError):
        return
    result = scan([path])
    for stack in result.stacks:
        try:
            vol = load_volume(stack, workers=1)
        except DicomFileError as exc:
            assert exc.path == str(path)
        else:
            assert vol.array.nbytes <= 64 * len(raw) + 4096
    assert time.perf_counter() - t0 < 10


def test_missing_decoder_names_what_to_install(one_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from viewer.dicom import headers

    class Unavailable:
        is_available = False
        missing_dependencies = ["pylibjpeg - requires pylibjpeg-openjpeg>=2.0", "gdcm - requires python-gdcm"]

    ds = pydicom.dcmread(one_file)
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\x00" * 600])
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.save_as(tmp_path / "j2k.dcm")
    headers.decoder_problem.cache_clear()
    monkeypatch.setattr(headers, "get_decoder", lambda uid: Unavailable())
    try:
        message = _scan_one(tmp_path / "j2k.dcm")
    finally:
        headers.decoder_problem.cache_clear()
    assert "no decoder installed for JPEG 2000 Image Compression (Lossless Only)" in message
    assert "pylibjpeg-openjpeg" in message and "python-gdcm" in message


def test_video_transfer_syntax_is_unsupported(one_file: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(one_file)
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 600])
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"
    ds.save_as(tmp_path / "video.dcm")
    assert "unsupported compression: MPEG2 Main Profile / Main Level" in _scan_one(tmp_path / "video.dcm")


def test_gdcm_is_only_a_last_resort() -> None:
    from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, JPEGLSLossless

    from viewer.dicom.pixels import plugin_order

    for ts in (JPEGBaseline8Bit, JPEGLSLossless, JPEG2000Lossless):
        order = plugin_order(ts)
        assert order and "gdcm" not in order, (ts, order)


@pytest.mark.parametrize("seed", range(6))
def test_corrupt_jpeg_stream_fails_cleanly(tmp_path: Path, seed: int) -> None:
    """Garbage inside a JPEG stream (python-gdcm aborts the process on some of these)."""
    src = pydicom_test_file("SC_rgb_jpeg_gdcm.dcm")
    raw = bytearray(src.read_bytes())
    rng = np.random.default_rng(seed)
    start = len(raw) - 3000
    raw[start:start + 400] = rng.integers(0, 256, 400, dtype=np.uint8).tobytes()
    path = tmp_path / "jpeg.dcm"
    path.write_bytes(bytes(raw))
    for stack in scan([path]).stacks:
        try:
            vol = load_volume(stack)
        except DicomFileError as exc:
            assert exc.path == str(path) and "unsupported compression: JPEG Lossless" in exc.reason
        else:
            assert vol.array.shape == (1, 100, 100, 3)

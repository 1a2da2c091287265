"""Every pydicom / pydicom-data test image the engine claims to read, checked against pydicom itself,
lossless compressed files against their uncompressed twins, and the files it must refuse."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_color_lut, apply_modality_lut
from pydicom.uid import JPEG2000, JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSNearLossless

from tests.conftest import pydicom_data_file, pydicom_test_file
from viewer.dicom import Volume, load_volume, scan
from viewer.dicom.errors import DicomFileError

PYDICOM_READABLE = [
    "693_J2KI.dcm", "CT_small.dcm", "ExplVR_BigEnd.dcm", "GDCMJ2K_TextGBR.dcm", "J2K_pixelrep_mismatch.dcm",
    "JPEG2000.dcm", "JPEGLSNearLossless_08.dcm", "JPEGLSNearLossless_16.dcm", "JPGExtended.dcm", "MR_small.dcm",
    "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm", "MR_small_implicit.dcm",
    "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_padded.dcm",
    "SC_jpeg_no_color_transform.dcm", "SC_jpeg_no_color_transform_2.dcm", "SC_rgb_dcmtk_+eb+cr.dcm",
    "SC_rgb_dcmtk_+eb+cy+n1.dcm", "SC_rgb_dcmtk_+eb+cy+n2.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm",
    "SC_rgb_dcmtk_+eb+cy+s2.dcm", "SC_rgb_dcmtk_+eb+cy+s4.dcm", "SC_rgb_gdcm_KY.dcm", "SC_rgb_jls_lossy_line.dcm",
    "SC_rgb_jls_lossy_sample.dcm", "SC_rgb_jpeg.dcm", "SC_rgb_jpeg_app14_dcmd.dcm", "SC_rgb_jpeg_dcmd.dcm",
    "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_jpeg_gdcm.dcm", "SC_rgb_jpeg_lossy_gdcm.dcm", "SC_rgb_rle.dcm",
    "SC_rgb_rle_16bit.dcm", "SC_rgb_rle_16bit_2frame.dcm", "SC_rgb_rle_2frame.dcm", "SC_rgb_rle_32bit.dcm",
    "SC_rgb_rle_32bit_2frame.dcm", "SC_rgb_small_odd.dcm", "SC_rgb_small_odd_big_endian.dcm",
    "SC_rgb_small_odd_jpeg.dcm", "SC_ybr_full_422_uncompressed.dcm", "examples_jpeg2k.dcm",
    "examples_overlay.dcm", "examples_palette.dcm", "examples_rgb_color.dcm", "examples_ybr_color.dcm",
    "image_dfl.dcm", "liver_1frame.dcm", "liver_expb_1frame.dcm", "rtdose.dcm", "rtdose_1frame.dcm",
    "rtdose_expb.dcm", "rtdose_expb_1frame.dcm", "rtdose_rle.dcm", "rtdose_rle_1frame.dcm",
]
PYDICOM_DATA_READABLE = [
    "693_J2KR.dcm", "693_UNCI.dcm", "693_UNCR.dcm", "JPEG-LL.dcm", "JPEG2000_UNC.dcm",
    "JPGLosslessP14SV1_1s_1f_8b.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm", "MR2_J2KI.dcm", "MR2_J2KR.dcm",
    "MR2_UNCI.dcm", "MR2_UNCR.dcm", "OBXXXX1A.dcm", "OBXXXX1A_2frame.dcm",
    "OBXXXX1A_rle.dcm", "OBXXXX1A_rle_2frame.dcm", "OT-PAL-8-face.dcm",
    "RG1_J2KI.dcm", "RG1_J2KR.dcm", "RG1_UNCI.dcm", "RG1_UNCR.dcm", "RG3_J2KI.dcm", "RG3_J2KR.dcm",
    "RG3_UNCI.dcm", "RG3_UNCR.dcm", "SC_rgb.dcm", "SC_rgb_16bit.dcm", "SC_rgb_16bit_2frame.dcm",
    "SC_rgb_2frame.dcm", "SC_rgb_32bit.dcm", "SC_rgb_32bit_2frame.dcm", "SC_rgb_dcmtk_ebcr_dcmd.dcm",
    "SC_rgb_dcmtk_ebcyn1_dcmd.dcm", "SC_rgb_dcmtk_ebcyn2_dcmd.dcm", "SC_rgb_dcmtk_ebcynp_dcmd.dcm",
    "SC_rgb_dcmtk_ebcys2_dcmd.dcm", "SC_rgb_dcmtk_ebcys4_dcmd.dcm", "SC_rgb_expb.dcm", "SC_rgb_expb_16bit.dcm",
    "SC_rgb_expb_16bit_2frame.dcm", "SC_rgb_expb_2frame.dcm", "SC_rgb_expb_32bit.dcm",
    "SC_rgb_expb_32bit_2frame.dcm", "SC_rgb_gdcm2k_uncompressed.dcm", "SC_ybr_full_uncompressed.dcm",
    "US1_J2KI.dcm", "US1_J2KR.dcm", "US1_UNCI.dcm", "US1_UNCR.dcm", "bad_sequence.dcm", "color-pl.dcm",
    "color-px.dcm", "color3d_jpeg_baseline.dcm", "eCT_Supplemental.dcm", "emri_small.dcm", "emri_small_RLE.dcm",
    "emri_small_big_endian.dcm", "emri_small_jpeg_2k_lossless.dcm", "emri_small_jpeg_ls_lossless.dcm",
    "explicit_VR-UN.dcm", "gdcm-US-ALOKA-16.dcm", "gdcm-US-ALOKA-16_big.dcm", "liver.dcm", "liver_expb.dcm",
    "mlut_18.dcm", "vlut_04.dcm",
]
BIG = {"RG1_J2KI.dcm", "RG1_J2KR.dcm", "RG3_J2KI.dcm", "RG3_J2KR.dcm", "MR2_J2KI.dcm", "MR2_J2KR.dcm", "color3d_jpeg_baseline.dcm"}
LOSSLESS_TWINS = [
    ("pydicom", "MR_small.dcm", ["MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm",
                                 "MR_small_implicit.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"]),
    ("data", "MR2_UNCR.dcm", ["MR2_J2KR.dcm"]),
    ("data", "RG1_UNCR.dcm", ["RG1_J2KR.dcm"]),
    ("data", "RG3_UNCR.dcm", ["RG3_J2KR.dcm"]),
    ("data", "693_UNCR.dcm", ["693_J2KR.dcm"]),
    ("data", "US1_UNCR.dcm", ["US1_J2KR.dcm"]),
    ("data", "emri_small.dcm", ["emri_small_RLE.dcm", "emri_small_big_endian.dcm", "emri_small_jpeg_2k_lossless.dcm",
                                "emri_small_jpeg_ls_lossless.dcm"]),
    ("data", "SC_rgb.dcm", ["SC_rgb_expb.dcm", "SC_rgb_gdcm2k_uncompressed.dcm"]),
    # the big endian palette twins are checked here only: pydicom 3.0's apply_color_lut reads their LUTs wrong
    ("data", "OBXXXX1A.dcm", ["OBXXXX1A_rle.dcm", "OBXXXX1A_expb.dcm"]),
    ("data", "OBXXXX1A_2frame.dcm", ["OBXXXX1A_rle_2frame.dcm", "OBXXXX1A_expb_2frame.dcm"]),
    ("data", "liver.dcm", ["liver_expb.dcm"]),
    ("pydicom", "rtdose.dcm", ["rtdose_rle.dcm", "rtdose_expb.dcm"]),
]
# file -> a phrase its error must contain (at scan, or when loading)
REFUSED = {
    "JPEG-lossy.dcm": "unsupported compression: JPEG Extended (Process 2 and 4)",
    "JPEG2000-embedded-sequence-delimiter.dcm": "unsupported compression: JPEG 2000",
    "MR_truncated.dcm": "truncated",
    "emri_small_jpeg_2k_lossless_too_short.dcm": "truncated",
    "rtplan.dcm": "no image pixel data (RT Plan Storage)",
    "test-SR.dcm": "no image pixel data",
    "meta_missing_tsyntax.dcm": "invalid image size",
}


LOSSY = {JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSNearLossless, JPEG2000}


def _path(source: str, name: str) -> Path:
    return pydicom_test_file(name) if source == "pydicom" else pydicom_data_file(name)


def _load(path: Path) -> Volume:
    result = scan([path])
    assert result.errors == [], result.errors
    assert len(result.stacks) == 1
    return load_volume(result.stacks[0])


def _pydicom_reference(path: Path, frames: list[int] | None = None) -> np.ndarray:
    """pydicom's own decode + modality LUT (functional-group rescale for enhanced, dose grid scaling), frames first;
    ``frames``: only those (0-based) frames of a multi-frame file."""
    ds = pydicom.dcmread(path, force=True)
    if "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    n_frames = int(ds.get("NumberOfFrames") or 1)
    if frames is not None and n_frames > 1:
        arr = np.stack([pydicom.pixels.pixel_array(ds, index=f) for f in frames])
        n_frames = len(frames)
    else:
        arr = ds.pixel_array
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
        arr = arr if arr.dtype == np.uint8 else (arr >> 8).astype(np.uint8)
    elif ds.SamplesPerPixel == 3:
        arr = arr if arr.dtype == np.uint8 else np.clip(arr.astype(np.int64) >> (ds.BitsStored - 8), 0, 255).astype(np.uint8)
    elif "SharedFunctionalGroupsSequence" in ds and "PixelValueTransformationSequence" in ds.SharedFunctionalGroupsSequence[0]:
        t = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
        arr = (arr * float(t.RescaleSlope) + float(t.RescaleIntercept)).astype(np.float32)
    else:
        arr = apply_modality_lut(arr, ds).astype(np.float32)
        if ds.get("Modality") == "RTDOSE" and "DoseGridScaling" in ds:  # dose = stored value x scaling
            arr = (arr * float(ds.DoseGridScaling)).astype(np.float32)
    return arr[np.newaxis] if n_frames == 1 else arr


def _params() -> list[object]:
    out = []
    for source, names in (("pydicom", PYDICOM_READABLE), ("data", PYDICOM_DATA_READABLE)):
        for name in names:
            marks = [pytest.mark.slow] if name in BIG else []
            out.append(pytest.param(source, name, id=name, marks=marks))
    return out


@pytest.mark.parametrize(("source", "name"), _params())
def test_reads_like_pydicom(source: str, name: str) -> None:
    path = _path(source, name)
    vol = _load(path)
    frames = [(f or 1) - 1 for f in vol.frame_numbers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if len(frames) > 16:  # long cines: three frames are enough to check order and values
            keep = [0, len(frames) // 2, len(frames) - 1]
            ref = _pydicom_reference(path, [frames[k] for k in keep])
            vol = Volume(vol.array[keep], vol.origin, vol.spacing, vol.direction, [vol.sop_instance_uids[k] for k in keep])
        else:
            ref = _pydicom_reference(path)[frames]
    assert vol.array.shape == ref.shape
    assert vol.array.dtype == (np.uint8 if vol.is_color else np.float32)
    ts = pydicom.dcmread(path, stop_before_pixels=True, force=True).file_meta.get("TransferSyntaxUID")
    if ts in LOSSY:
        # lossy decoders differ by IDCT rounding (the engine prefers pylibjpeg, pydicom tries gdcm first)
        diff = np.abs(vol.array.astype(np.float64) - ref.astype(np.float64))
        assert diff.mean() < 1.0 and diff.max() <= 32
    elif vol.is_color:
        assert np.array_equal(vol.array, ref)
    else:
        assert np.allclose(vol.array, ref, rtol=1e-6, atol=1e-3)
    assert len(vol.sop_instance_uids) == vol.shape[0]
    assert np.all(vol.spacing > 0)


@pytest.mark.parametrize(("source", "reference", "twins"), LOSSLESS_TWINS, ids=[t[1] for t in LOSSLESS_TWINS])
def test_lossless_compressed_equals_uncompressed_twin(source: str, reference: str, twins: list[str]) -> None:
    ref = _load(_path(source, reference))
    for twin in twins:
        if twin in BIG and not twin.startswith("MR2"):
            continue  # the large J2K files are covered by the slow test above
        vol = _load(_path(source, twin))
        assert np.array_equal(vol.array, ref.array), twin
        assert np.allclose(vol.affine, ref.affine)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_unusable_files_give_a_clear_error_naming_the_file(name: str) -> None:
    path = pydicom_test_file(name)
    result = scan([path])
    if result.errors:
        [err] = result.errors
        message = err.error
    else:
        with pytest.raises(DicomFileError) as info:
            load_volume(result.stacks[0])
        message = info.value.reason
        err = info.value.as_file_error()
    assert err.path == str(path)
    assert REFUSED[name] in message


def test_unsupported_file_does_not_stop_the_rest(tmp_path: Path) -> None:
    import shutil

    shutil.copy(pydicom_test_file("JPEG-lossy.dcm"), tmp_path / "a.dcm")
    shutil.copy(pydicom_test_file("CT_small.dcm"), tmp_path / "b.dcm")
    result = scan([tmp_path])
    vols, errs = [], []
    for stack in result.stacks:
        try:
            vols.append(load_volume(stack))
        except DicomFileError as exc:
            errs.append(exc)
    assert len(vols) == 1 and vols[0].info.modality == "CT"
    assert len(errs) == 1 and "JPEG Extended" in errs[0].reason and errs[0].path.endswith("a.dcm")


def test_header_facts_of_real_files() -> None:
    rg1 = _load(pydicom_data_file("RG1_UNCR.dcm"))
    assert rg1.info.monochrome1 and rg1.info.modality == "CR" and rg1.shape == (1, 1955, 1841)
    assert rg1.array.min() < rg1.array.max()  # not inverted, not blank
    ct = _load(pydicom_test_file("CT_small.dcm"))
    ds = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    assert np.allclose(ct.origin, [float(v) for v in ds.ImagePositionPatient])
    assert ct.spacing[:2] == pytest.approx([float(ds.PixelSpacing[1]), float(ds.PixelSpacing[0])])
    assert ct.info.windows == [] or ct.info.windows[0].width > 0
    pal = _load(pydicom_data_file("OT-PAL-8-face.dcm"))
    assert pal.is_color and pal.array.shape[-1] == 3


def test_wrong_vr_values_do_not_stop_loading() -> None:
    """badVR.dcm's NumberOfFrames is '1A', which makes pydicom's pixel_array fail; the engine reads
    it as a single frame (the first 10x10 unsigned 32-bit values, in dose: times its Dose Grid Scaling)."""
    vol = _load(pydicom_test_file("badVR.dcm"))
    ds = pydicom.dcmread(pydicom_test_file("badVR.dcm"))
    raw = np.frombuffer(ds.PixelData, dtype="<u4")
    assert vol.shape == (1, 10, 10)
    assert np.allclose(vol.array.reshape(-1), (raw[:100] * float(ds.DoseGridScaling)).astype(np.float32), rtol=1e-6)


def test_dicomdir_is_followed() -> None:
    dicomdir = pydicom_test_file("DICOMDIR")
    result = scan([dicomdir])
    ds = pydicom.dcmread(dicomdir)
    referenced = {str(Path(dicomdir).parent.joinpath(*r.ReferencedFileID)) for r in ds.DirectoryRecordSequence
                  if "ReferencedFileID" in r}
    # pydicom's DICOMDIR set is made of header-only files: each referenced file is found and reported
    found = {e.path for e in result.errors} | {f for s in result.stacks for f in s.files}
    assert referenced and referenced <= found
    assert all("no image pixel data" in e.error for e in result.errors)

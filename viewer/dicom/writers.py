"""Writing a Volume to research formats with its true physical geometry.

``.nii.gz`` / ``.nii`` / ``.nrrd`` / ``.mha`` / ``.mhd`` go through SimpleITK (LPS geometry as ITK
stores it; NIfTI readers convert to RAS themselves). ``.npz`` holds ``volume`` (z, y, x), ``origin``
(3,), ``spacing`` (3,) and ``direction`` (3, 3), all in x, y, z order, LPS, exactly as SimpleITK
orders them (``direction.reshape(-1)`` is ``GetDirection()``), plus ``sop_instance_uids``.
NIfTI cannot store a non-orthogonal direction (gantry tilt): ITK would silently orthogonalise it
and misplace every slice, so such a volume is first resampled (linear) onto an orthogonal grid along
the slice normal (:func:`orthogonal_volume`, the same grid ``radscope infer`` should use).
Integer volumes (``load_volume(..., integers=True)``) are written in their own type; float volumes
whose values are all integers in int16 range as int16 (lossless, half the size), otherwise float32.
``.mha``/``.nrrd`` are uncompressed unless asked (``compress=True``), ``.nii.gz`` always compressed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from viewer.dicom.streamwriters import write_mha, write_nifti, write_nrrd
from viewer.dicom.volume import Volume

STREAMED = {".mha": write_mha, ".nrrd": write_nrrd, ".nii": write_nifti, ".nii.gz": write_nifti}
SITK_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")
SUFFIXES = SITK_SUFFIXES + (".npz",)


def output_format(path: str | Path) -> str:
    """The suffix of ``path`` that selects the writer; ValueError for anything unsupported."""
    name = str(path).lower()
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise ValueError(f"{path}: unsupported output format (use one of {', '.join(SUFFIXES)})")


def exact_int16(arr: np.ndarray) -> bool:
    """Whether every value of the float array is an integer in int16 range (slice by slice: no copy of
    the whole volume)."""
    for part in arr:
        lo, hi = float(part.min()), float(part.max())
        if not (np.isfinite(lo) and np.isfinite(hi) and -32768 <= lo and hi <= 32767):
            return False
        if not np.array_equal(part, np.round(part)):
            return False
    return True


def storage_dtype(vol: Volume) -> np.dtype:
    """The type written: an integer volume's own, int16 for a float volume when that is exact, else
    float32 (uint8 for RGB)."""
    arr = vol.array
    if vol.is_color or arr.dtype.kind in "iu" or arr.size == 0:
        return arr.dtype
    return np.dtype(np.int16) if exact_int16(arr) else arr.dtype


def storage_array(vol: Volume) -> np.ndarray:
    """The volume's array in :func:`storage_dtype` (the array itself when no conversion is needed)."""
    dtype = storage_dtype(vol)
    return vol.array if vol.array.dtype == dtype else vol.array.astype(dtype)


def is_orthonormal(direction: np.ndarray, tol: float = 1e-4) -> bool:
    return bool(np.allclose(direction.T @ direction, np.eye(3), atol=tol))


def orthogonal_volume(vol: Volume) -> Volume:
    """``vol`` resampled (linear) onto an orthogonal grid: i, j and the slice normal, same i/j spacing,
    slice spacing = the step along the normal; the grid grows to hold every input voxel. A volume that
    is already orthogonal comes back unchanged."""
    if is_orthonormal(vol.direction) or vol.is_color:
        return vol
    import SimpleITK as sitk

    row, col = vol.direction[:, 0], vol.direction[:, 1]
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)
    rot = np.column_stack([row, col, normal])
    k, j, i = vol.shape
    corners = np.array([[a, b, c] for a in (0, i - 1) for b in (0, j - 1) for c in (0, k - 1)], dtype=float)
    local = (vol.index_to_lps(corners) - vol.origin) @ rot
    step = float(vol.spacing[2] * abs(vol.direction[:, 2] @ normal)) or float(vol.spacing[2])
    spacing = np.array([vol.spacing[0], vol.spacing[1], step])
    lo, hi = local.min(axis=0), local.max(axis=0)
    size = [int(np.ceil((hi[a] - lo[a]) / spacing[a] - 1e-6)) + 1 for a in range(3)]
    origin = vol.origin + rot @ lo
    out = sitk.Resample(
        vol.to_sitk(), size, sitk.Transform(), sitk.sitkLinear, tuple(float(v) for v in origin),
        tuple(float(v) for v in spacing), tuple(float(v) for v in rot.reshape(-1)), float(vol.array.min()),
        sitk.sitkFloat32,
    )
    uids = vol.sop_instance_uids if size[2] == k else [""] * size[2]
    return Volume(
        array=sitk.GetArrayFromImage(out), origin=origin, spacing=spacing, direction=rot, sop_instance_uids=uids,
        info=vol.info, warnings=vol.warnings + ["resampled onto an orthogonal grid (gantry tilt) for NIfTI"],
        source_files=vol.source_files if size[2] == k else [], frame_numbers=vol.frame_numbers if size[2] == k else [],
    )


def write_volume(vol: Volume, path: str | Path, compress: bool | None = None) -> Path:
    """Write ``vol`` to ``path`` (format from the suffix); returns the path written.

    ``compress``: None = as the name says (``.nii.gz`` compressed, everything else not); True
    compresses ``.mha``/``.nrrd``/``.npz`` too (``.nii`` and ``.mhd`` never). ``.mha``, ``.nrrd`` and
    grey NIfTI are streamed (:mod:`viewer.dicom.streamwriters`: header, then the voxels straight from the
    array slice by slice, compressed on the fly; no copy of the volume, no SimpleITK); ``.mhd`` and
    colour NIfTI go through SimpleITK. The file appears complete or not at all (written beside it,
    then renamed). For NIfTI a non-orthogonal (tilted) volume is resampled first, see
    :func:`orthogonal_volume`.
    """
    path = Path(path)
    suffix = output_format(path)
    if suffix in (".nii", ".nii.gz"):
        vol = orthogonal_volume(vol)
    path.parent.mkdir(parents=True, exist_ok=True)
    packed = suffix == ".nii.gz" if compress is None else (bool(compress) and suffix not in (".nii", ".mhd"))
    if suffix == ".nii.gz":
        packed = True
    # beside the target, with the same suffix (the writers go by it); .mhd names its .raw file, so in place
    tmp = path if suffix == ".mhd" else path.with_name(f".{path.name[: -len(suffix)]}.{os.getpid()}.part{suffix}")
    try:
        if suffix == ".npz":
            with open(tmp, "wb") as f:
                (np.savez_compressed if packed else np.savez)(
                    f, volume=storage_array(vol), origin=vol.origin, spacing=vol.spacing, direction=vol.direction,
                    sop_instance_uids=np.array(vol.sop_instance_uids, dtype=str), missing=vol.missing_mask)
        elif suffix in STREAMED and not (vol.is_color and suffix in (".nii", ".nii.gz")):
            STREAMED[suffix](tmp, vol.array, storage_dtype(vol), vol.origin, vol.spacing, vol.direction, packed)
        else:  # .mhd (separate data file) and colour NIfTI
            _write_sitk(vol, tmp, suffix, packed)
        if tmp != path:
            os.replace(tmp, path)
    finally:
        if tmp != path:
            tmp.unlink(missing_ok=True)
    return path


def _write_sitk(vol: Volume, tmp: Path, suffix: str, compress: bool) -> None:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(storage_array(vol), isVector=vol.is_color)
    img.SetOrigin(tuple(float(v) for v in vol.origin))
    img.SetSpacing(tuple(float(v) for v in vol.spacing))
    img.SetDirection(tuple(float(v) for v in vol.direction.reshape(-1)))
    writer = sitk.ImageFileWriter()
    writer.SetFileName(str(tmp))
    writer.SetImageIO({".nii.gz": "NiftiImageIO", ".nii": "NiftiImageIO", ".nrrd": "NrrdImageIO",
                       ".mha": "MetaImageIO", ".mhd": "MetaImageIO"}[suffix])
    writer.SetUseCompression(compress)
    writer.Execute(img)

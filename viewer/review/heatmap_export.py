"""Export ``radscope infer`` heatmaps as DICOM Parametric Maps referencing their source series.

``infer --out DIR`` writes ``DIR/<series_uid>/scores.json`` and ``heatmap_<label>.nii.gz`` on the
geometry ``convert`` writes (slice k of the file is slice k in RadScope's order). Each heatmap is
checked against the source stack (size and first-slice position) before it is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from viewer.paths import inside
from viewer.review.dicom_export import DicomExportError, ExportedFile, heatmap_parametric_map, safe_name
from viewer.review.model import ModelInfo

POSITION_TOL_MM = 0.01


def _read_heatmap(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(array (k, j, i) float32, origin xyz) of a heatmap file."""
    import SimpleITK as sitk

    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise DicomExportError(f"cannot read heatmap {path}: {str(exc).strip().splitlines()[-1]}") from exc
    arr = sitk.GetArrayFromImage(img).astype(np.float32, copy=False)
    return (arr if arr.ndim == 3 else arr[np.newaxis]), np.array(img.GetOrigin(), dtype=np.float64)


def export_heatmaps(infer_dir: str | os.PathLike[str], source: str | os.PathLike[str],
                    out_dir: str | os.PathLike[str]) -> list[ExportedFile]:
    """Write ``out_dir/<study_uid>/PM_<series_uid>_<label>.dcm`` for every heatmap under ``infer_dir``."""
    from viewer.dicom import scan

    infer_dir, out = Path(infer_dir), Path(out_dir)
    series_dirs = sorted(p.parent for p in infer_dir.glob("*/scores.json"))
    if not series_dirs:
        raise DicomExportError(f"{infer_dir} holds no <series_uid>/scores.json written by `radscope infer`")
    result = scan([os.fspath(source)])
    written: list[ExportedFile] = []
    for folder in series_dirs:
        try:
            scores = json.loads((folder / "scores.json").read_text(encoding="utf-8"))
            model = ModelInfo(**{k: str(v) for k, v in (scores.get("model") or {}).items()
                                 if k in ("name", "version", "sha256")})
        except (OSError, ValueError, TypeError) as exc:
            raise DicomExportError(f"cannot read {folder / 'scores.json'}: {exc}") from exc
        # the folder's name is made safe (viewer.paths); the series it holds is recorded in scores.json
        series = str(scores.get("stack_id") or scores.get("series_uid") or folder.name)
        stack = result.find(series)
        if stack is None:
            raise DicomExportError(f"series {series} (from {folder}) is not in {source}")
        if any(f is not None for f in stack.frame_numbers):
            raise DicomExportError(f"series {series} is multi-frame; Parametric Map export needs single-frame images")
        if stack.slice_grid.resample is not None:
            raise DicomExportError(f"series {series} was resampled (variable slice spacing): its heat maps lie "
                                   "between the acquired images, a Parametric Map needs them on the images")
        acquired = np.flatnonzero(~stack.missing)  # a gap's missing slices have no image to reference
        headers = [stack.read_header(int(k)) for k in acquired]
        for path in sorted(folder.glob("heatmap_*.nii.gz")):
            label = path.name[len("heatmap_"):-len(".nii.gz")]
            heat, origin = _read_heatmap(path)
            if heat.shape != (stack.n_slices, stack.rows, stack.columns):
                raise DicomExportError(f"{path}: shape {heat.shape} differs from series {series} "
                                       f"({stack.n_slices}, {stack.rows}, {stack.columns})")
            if np.max(np.abs(origin - np.asarray(stack.origin))) > POSITION_TOL_MM:
                raise DicomExportError(f"{path}: origin {origin.round(3).tolist()} is not the first slice of "
                                       f"series {series} at {np.asarray(stack.origin).round(3).tolist()}")
            pm = heatmap_parametric_map(headers, heat[acquired], label=label, model=model, method=str(scores.get("method", "")))
            study = str(headers[0].StudyInstanceUID)
            target = inside(out, safe_name(study, tag_changes=True), f"PM_{safe_name(folder.name)}_{safe_name(label)}.dcm")
            target.parent.mkdir(parents=True, exist_ok=True)
            pm.save_as(target, enforce_file_format=True)
            written.append(ExportedFile(target, "PM", study))
    return written

"""Ranking a ``radscope infer`` output folder for review: what most deserves a human look comes first.

Per series (one ``scores.json`` with its heatmaps), three signs that the model may be wrong, each in [0, 1]:

- **near the threshold**: the label's top score close to its decision threshold (1 at the threshold, 0 at
  0 or 1): the model was unsure about the series' most suspicious image;
- **unlike the training data**: the share of slices flagged out of distribution (``ood_flag``);
- **diffuse evidence**: for a finding (top score at or above the threshold), the share of the peak image's
  pixels at or above half the heatmap's peak, scaled so that 20% or more counts fully: a finding the model
  cannot place.

The priority is their sum (0..3); the reason names each sign that contributes, strongest first. A study's
priority is its highest series'. Every file is read as untrusted: a folder whose files cannot be read is
listed with the reason and ranks nowhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_THRESHOLD = 0.5
DIFFUSE_FULL = 0.20
"""Share of the peak image at or above half the peak at which a heatmap counts as fully diffuse."""
MAX_SCORES_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class SeriesRank:
    study_uid: str
    series_uid: str
    folder: Path
    priority: float
    reasons: tuple[str, ...]
    near: float = 0.0
    ood_share: float = 0.0
    diffuse: float = 0.0

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "nothing unusual"


@dataclass
class Ranking:
    series: list[SeriesRank] = field(default_factory=list)
    errors: list[tuple[Path, str]] = field(default_factory=list)

    def studies(self) -> list[tuple[str, float, str]]:
        """(study UID, priority, reason) per study, highest priority first (ties: study UID)."""
        best: dict[str, SeriesRank] = {}
        count: dict[str, int] = {}
        for r in self.series:
            count[r.study_uid] = count.get(r.study_uid, 0) + 1
            if r.study_uid not in best or r.priority > best[r.study_uid].priority:
                best[r.study_uid] = r
        out = []
        for uid, r in best.items():
            more = f" (highest of {count[uid]} series)" if count[uid] > 1 else ""
            out.append((uid, r.priority, f"{r.reason}{more}"))
        return sorted(out, key=lambda t: (-t[1], t[0]))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if np.isfinite(v) else None


def near_threshold(top: float, threshold: float) -> float:
    """1 at the threshold, falling linearly to 0 at 0 and at 1."""
    span = threshold if top < threshold else 1.0 - threshold
    return float(max(0.0, 1.0 - abs(top - threshold) / span)) if span > 0 else 0.0


def diffuseness(image: np.ndarray) -> float:
    """Share of the image at or above half its peak (0 for an empty map)."""
    peak = float(np.nanmax(image)) if image.size else 0.0
    if not np.isfinite(peak) or peak <= 0:
        return 0.0
    return float(np.count_nonzero(image >= 0.5 * peak) / image.size)


def _heatmap_slice(path: Path, index: int) -> np.ndarray | None:
    import SimpleITK as sitk

    if not path.is_file():
        return None
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    size = reader.GetSize()
    if len(size) != 3 or not 0 <= index < size[2]:
        return None
    reader.SetExtractIndex((0, 0, index))
    reader.SetExtractSize((size[0], size[1], 0))
    return sitk.GetArrayFromImage(reader.Execute()).astype(np.float32)


def rank_series(folder: Path) -> SeriesRank:
    """The rank of one output folder; raises ValueError naming the file when it cannot be read."""
    from viewer.batch.series import safe_label

    path = folder / "scores.json"
    try:
        if path.stat().st_size > MAX_SCORES_BYTES:
            raise ValueError(f"{path}: larger than {MAX_SCORES_BYTES // 2**20} MiB")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ValueError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("slices"), list) or not isinstance(doc.get("labels"), list):
        raise ValueError(f"{path}: not a radscope infer scores.json (no labels or slices)")
    labels = [str(x) for x in doc["labels"]]
    found = doc.get("thresholds")
    thresholds: dict[str, Any] = found if isinstance(found, dict) else {}
    slices = [s for s in doc["slices"] if isinstance(s, dict) and isinstance(s.get("scores"), dict)]
    if not slices:
        raise ValueError(f"{path}: no scored slices")
    reasons: list[tuple[float, str]] = []
    near_best = diffuse_best = 0.0
    for label in labels:
        thr = _number(thresholds.get(label)) or DEFAULT_THRESHOLD
        scored = [(v, k) for k, s in enumerate(slices) if (v := _number(s["scores"].get(label))) is not None]
        if not scored:
            continue
        top, k = max(scored)
        near = near_threshold(top, thr)
        if near > near_best:
            near_best = near
        if near >= 0.5:
            reasons.append((near, f"{label} top score {top:.2f} near its threshold {thr:.2f}"))
        if top >= thr:
            index = slices[k].get("index", k)
            image = _heatmap_slice(folder / f"heatmap_{safe_label(label)}.nii.gz", int(index)) \
                if isinstance(index, int) else None
            if image is not None:
                share = diffuseness(image)
                diffuse = min(1.0, share / DIFFUSE_FULL)
                diffuse_best = max(diffuse_best, diffuse)
                if diffuse >= 0.5:
                    reasons.append((diffuse, f"{label} finding with a diffuse heatmap ({share:.0%} of image "
                                             f"{int(index) + 1} at half its peak or more)"))
    flags = [bool(s.get("ood_flag")) for s in slices if "ood_flag" in s]
    ood_share = sum(flags) / len(flags) if flags else 0.0
    if ood_share > 0:
        reasons.append((ood_share, f"{sum(flags)} of {len(flags)} slices unlike the training data"))
    if doc.get("in_scope") is False:
        reasons.append((0.0, "run outside the model's intended use"))
    reasons.sort(key=lambda t: -t[0])
    return SeriesRank(str(doc.get("study_uid", "")), str(doc.get("series_uid", folder.name)), folder,
                      round(near_best + ood_share + diffuse_best, 4), tuple(r for _, r in reasons),
                      near_best, ood_share, diffuse_best)


def rank_folder(out_root: Path) -> Ranking:
    """Every series folder under a ``radscope infer --out`` folder, highest priority first."""
    ranking = Ranking()
    for scores in sorted(Path(out_root).glob("*/scores.json")):
        try:
            rank = rank_series(scores.parent)
        except ValueError as exc:
            ranking.errors.append((scores.parent, str(exc)))
            continue
        if not rank.study_uid:
            ranking.errors.append((scores.parent, f"{scores}: no study_uid (written before RadScope 0.2?)"))
            continue
        ranking.series.append(rank)
    ranking.series.sort(key=lambda r: (-r.priority, r.series_uid))
    return ranking


def add_to_worklist(store: Any, out_root: Path) -> Ranking:
    """Rank ``out_root`` and put its studies on ``store``'s worklist with their priority and reason (a study
    already there keeps its status; its priority is replaced by this run's)."""
    ranking = rank_folder(out_root)
    by_study: dict[str, SeriesRank] = {}
    for r in ranking.series:
        by_study.setdefault(r.study_uid, r)
    for uid, priority, reason in ranking.studies():
        first = by_study[uid]
        doc = json.loads((first.folder / "scores.json").read_text(encoding="utf-8"))
        description = " ".join(str(doc.get(k, "")) for k in ("modality", "description")).strip()
        store.add_study(uid, description=description, source_path=str(doc.get("source", "")))
        store.set_priority(uid, priority, reason)
    return ranking

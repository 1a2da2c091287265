"""Review flags made in memory with known error rates per group (for the summary's statistics)."""

from __future__ import annotations

import uuid

import numpy as np

from viewer.review.model import Flag, HeaderAttributes, ModelInfo, Verdict

MAKERS = ("GE", "SIEMENS", "PHILIPS", "CANON")


def make_flag(i: int, verdict: Verdict, headers: HeaderAttributes, *, reviewer: str = "ann",
              image: str | None = None, label: str = "nodule") -> Flag:
    """A flag on image ``image`` (default: its own image) with the given header attributes."""
    uid = image or f"2.25.{uuid.UUID(int=i + 1).int}"
    return Flag(
        id=str(uuid.UUID(int=(1 << 100) + i)), study_uid="2.25.1", series_uid="2.25.2", stack_id="2.25.2",
        slice_index=i, sop_instance_uids=(uid,), sop_class_uid="1.2.840.10008.5.1.4.1.1.2", frame_number=None,
        verdict=verdict, label=label, region=None, comment="", reviewer=reviewer,
        created=f"2026-01-01T00:00:{i % 60:02d}Z", updated=f"2026-01-01T00:00:{i % 60:02d}Z",
        model=ModelInfo("demo", "1.0", "ab" * 32), method="gradcam", threshold=0.5, headers=headers,
    )


def planted_flags(n: int = 600, *, planted: str = "CANON", planted_rate: float = 0.6, base_rate: float = 0.15,
                  planted_share: float = 0.15, seed: int = 7) -> list[Flag]:
    """``n`` flags: manufacturer ``planted`` errs at ``planted_rate``, the others at ``base_rate``;
    sex, age band and kVp are drawn independently of the verdict (random splits)."""
    rng = np.random.default_rng(seed)
    flags = []
    for i in range(n):
        maker = planted if rng.random() < planted_share else str(rng.choice([m for m in MAKERS if m != planted]))
        wrong = rng.random() < (planted_rate if maker == planted else base_rate)
        verdict = Verdict(rng.choice(["false_positive", "false_negative"])) if wrong else Verdict.CORRECT
        headers = HeaderAttributes(
            manufacturer=maker, scanner_model=f"{maker} model {int(rng.integers(1, 3))}",
            kvp=str(rng.choice(["100", "120"])), patient_sex=str(rng.choice(["F", "M"])),
            age_band=str(rng.choice(["40-49", "50-59", "60-69"])), body_part="CHEST", modality="CT")
        flags.append(make_flag(i, verdict, headers))
    return flags

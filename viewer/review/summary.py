"""The review summary: verdict counts, error rates by group, and agreement between reviewers."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Hashable, Iterable, Sequence

from viewer.review.model import ERROR_VERDICTS, Flag, Verdict

#: Header attributes the rates are split by: (key in the summary, attribute of HeaderAttributes).
SPLIT_ATTRIBUTES = ("manufacturer", "scanner_model", "kvp", "patient_sex", "age_band", "body_part")
UNKNOWN = "(unknown)"


@dataclass(frozen=True)
class VerdictCounts:
    """Counts of each verdict in a group of flags, and the share the model got wrong."""

    counts: dict[str, int]
    total: int

    @classmethod
    def of(cls, flags: Iterable[Flag]) -> VerdictCounts:
        c = Counter(f.verdict.value for f in flags)
        return cls({v.value: c.get(v.value, 0) for v in Verdict}, sum(c.values()))

    @property
    def rates(self) -> dict[str, float]:
        return {k: (n / self.total if self.total else 0.0) for k, n in self.counts.items()}

    @property
    def error_rate(self) -> float:
        """(false positives + false negatives + mislocalised) / all flags."""
        wrong = sum(self.counts[v.value] for v in ERROR_VERDICTS)
        return wrong / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "counts": self.counts, "rates": self.rates, "error_rate": self.error_rate}


@dataclass(frozen=True)
class Agreement:
    """Chance-corrected agreement on verdicts between reviewers who judged the same images."""

    pairwise: list[dict[str, Any]] = field(default_factory=list)
    """``{"reviewers": [a, b], "n_items": n, "observed": p_o, "kappa": k | None}`` per pair (Cohen)."""
    fleiss: dict[str, Any] | None = None
    """``{"reviewers": [...], "n_items": n, "kappa": k | None}`` over images every reviewer judged (3+)."""


@dataclass(frozen=True)
class Summary:
    """Everything the summary view shows (JSON-ready through :meth:`to_dict`)."""

    overall: VerdictCounts
    by_model: dict[str, VerdictCounts]
    by_label: dict[str, VerdictCounts]
    by_attribute: dict[str, dict[str, VerdictCounts]]
    agreement: Agreement

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_dict(),
            "by_model": {k: v.to_dict() for k, v in self.by_model.items()},
            "by_label": {k: v.to_dict() for k, v in self.by_label.items()},
            "by_attribute": {a: {k: v.to_dict() for k, v in g.items()} for a, g in self.by_attribute.items()},
            "agreement": {"pairwise": self.agreement.pairwise, "fleiss": self.agreement.fleiss},
        }


def model_key(flag: Flag) -> str:
    """``name version`` of the flag's model ("(no model)" when none was recorded)."""
    text = " ".join(p for p in (flag.model.name, flag.model.version) if p)
    return text or "(no model)"


def _grouped(flags: Sequence[Flag], key: Any) -> dict[str, VerdictCounts]:
    groups: dict[str, list[Flag]] = defaultdict(list)
    for f in flags:
        groups[str(key(f)) or UNKNOWN].append(f)
    return {k: VerdictCounts.of(groups[k]) for k in sorted(groups)}


def summarize(flags: Iterable[Flag]) -> Summary:
    """The summary of the live (not deleted) flags given."""
    live = [f for f in flags if not f.deleted]
    return Summary(
        overall=VerdictCounts.of(live),
        by_model=_grouped(live, model_key),
        by_label=_grouped(live, lambda f: f.label),
        by_attribute={a: _grouped(live, lambda f, a=a: getattr(f.headers, a)) for a in SPLIT_ATTRIBUTES},
        agreement=agreement(live),
    )


# -- agreement ------------------------------------------------------------------------------------


def _ratings(flags: Sequence[Flag]) -> dict[str, dict[Hashable, str]]:
    """reviewer -> {(image, label): verdict}, the latest flag winning when one reviewer repeats."""
    out: dict[str, dict[Hashable, str]] = defaultdict(dict)
    for f in sorted(flags, key=lambda f: (f.updated, f.id)):
        out[f.reviewer][(f.sop_instance_uids, f.frame_number, f.label)] = f.verdict.value
    return out


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' paired categories (None when undefined: no items, or chance = 1)."""
    if len(a) != len(b):
        raise ValueError("both raters must rate the same items")
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[c] * cb[c] for c in set(ca) | set(cb)) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa(table: Sequence[Sequence[str]]) -> float | None:
    """Fleiss' kappa; ``table[i]`` holds every rater's category for item i (same count per item)."""
    if not table:
        return None
    m = len(table[0])
    if m < 2 or any(len(row) != m for row in table):
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings per item")
    n = len(table)
    categories = sorted({c for row in table for c in row})
    counts = [Counter(row) for row in table]
    p_items = [(sum(c[k] ** 2 for k in categories) - m) / (m * (m - 1)) for c in counts]
    p_bar = sum(p_items) / n
    p_cat = [sum(c[k] for c in counts) / (n * m) for k in categories]
    p_e = sum(p * p for p in p_cat)
    if p_e >= 1.0:
        return None
    return (p_bar - p_e) / (1.0 - p_e)


def agreement(flags: Sequence[Flag]) -> Agreement:
    """Cohen's kappa for each pair of reviewers over the images (and labels) both judged, and
    Fleiss' kappa over those every reviewer judged when there are three or more."""
    ratings = _ratings(flags)
    reviewers = sorted(ratings)
    pairwise = []
    for a, b in itertools.combinations(reviewers, 2):
        items = sorted(set(ratings[a]) & set(ratings[b]), key=repr)
        if not items:
            continue
        va, vb = [ratings[a][i] for i in items], [ratings[b][i] for i in items]
        pairwise.append({
            "reviewers": [a, b],
            "n_items": len(items),
            "observed": sum(x == y for x, y in zip(va, vb)) / len(items),
            "kappa": cohen_kappa(va, vb),
        })
    fleiss = None
    if len(reviewers) >= 3:
        common = set.intersection(*(set(ratings[r]) for r in reviewers))
        if common:
            table = [[ratings[r][i] for r in reviewers] for i in sorted(common, key=repr)]
            fleiss = {"reviewers": reviewers, "n_items": len(table), "kappa": fleiss_kappa(table)}
    return Agreement(pairwise, fleiss)


def format_summary(summary: Summary) -> str:
    """A plain-text rendering (CLI and the panel's summary view)."""
    verdicts = [v.value for v in Verdict]
    short = {"correct": "correct", "false_positive": "FP", "false_negative": "FN (missed)",
             "mislocalised": "misloc.", "uncertain": "unsure"}
    widths = [max(8, len(short[v]) + 2) for v in verdicts]
    head = f"{'':<24}{'n':>5}{'errors':>8}" + "".join(f"{short[v]:>{w}}" for v, w in zip(verdicts, widths))

    def line(name: str, c: VerdictCounts) -> str:
        return (f"{name[:23]:<24}{c.total:>5}{c.error_rate:>8.0%}"
                + "".join(f"{c.counts[v]:>{w}}" for v, w in zip(verdicts, widths)))

    out = [head, line("all flags", summary.overall)]
    for title, groups in [("model", summary.by_model), ("label", summary.by_label),
                          *[(a, summary.by_attribute[a]) for a in SPLIT_ATTRIBUTES]]:
        out.append(f"-- by {title.replace('_', ' ')}")
        out += [line(k, c) for k, c in groups.items()]
    out.append("-- agreement between reviewers")
    if not summary.agreement.pairwise:
        out.append("no image was judged by two reviewers")
    for p in summary.agreement.pairwise:
        k = "undefined" if p["kappa"] is None else f"{p['kappa']:.3f}"
        out.append(f"{p['reviewers'][0]} vs {p['reviewers'][1]}: {p['n_items']} images, "
                   f"agreement {p['observed']:.1%}, Cohen's kappa {k}")
    if summary.agreement.fleiss:
        f = summary.agreement.fleiss
        k = "undefined" if f["kappa"] is None else f"{f['kappa']:.3f}"
        out.append(f"all {len(f['reviewers'])} reviewers: {f['n_items']} images, Fleiss' kappa {k}")
    return "\n".join(out)

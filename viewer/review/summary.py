"""The review summary: verdict counts, error rates by group, and agreement between reviewers.

Every rate carries its 95% Wilson score interval (scipy's ``binomtest(...).proportion_ci``), so
4 errors in 8 flags reads as 22-78%, not as 50%. Within each split (model, label, each header
attribute) every group's error rate is compared with the rest of the flags by Fisher's exact test
(2x2), and the p values are Holm-adjusted for the number of groups in that split; a group whose
adjusted p is below :data:`ALPHA` is marked. Each split also gets a chi-square test of
independence over all its groups (an omnibus test; approximate when expected counts are small).
Cohen's and Fleiss' kappa get 95% percentile bootstrap intervals over the judged images
(:data:`BOOTSTRAP_RESAMPLES` resamples, fixed seed :data:`BOOTSTRAP_SEED`, so reruns agree).
"""

from __future__ import annotations

import itertools
import math
import textwrap
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Hashable, Iterable, Sequence

import numpy as np

from viewer.review.model import ERROR_VERDICTS, Flag, Verdict
from viewer.import_lock import import_scipy_stats

#: Header attributes the rates are split by: (key in the summary, attribute of HeaderAttributes).
SPLIT_ATTRIBUTES = ("manufacturer", "scanner_model", "kvp", "patient_sex", "age_band", "body_part")
UNKNOWN = "(unknown)"
CONFIDENCE = 0.95
ALPHA = 0.05
"""A group is marked when its Holm-adjusted p value is below this."""
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
INTERVAL_METHOD = "Wilson score interval, 95%"
TEST_METHOD = ("Fisher's exact test of each group's error rate against the rest of the flags, p values "
               "Holm-adjusted for the number of groups in the split; chi-square test of independence over "
               "all groups of the split")
KAPPA_METHOD = (f"percentile bootstrap over the judged images, {BOOTSTRAP_RESAMPLES} resamples, "
                f"seed {BOOTSTRAP_SEED}, 95%")


def wilson_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The Wilson score interval of ``k`` successes in ``n`` trials (None when ``n`` is 0)."""
    if n <= 0:
        return None
    if not 0 <= k <= n:
        raise ValueError(f"{k} successes in {n} trials")
    ci = import_scipy_stats().binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


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
    def errors(self) -> int:
        """False positives + false negatives + mislocalised."""
        return sum(self.counts[v.value] for v in ERROR_VERDICTS)

    @property
    def error_rate(self) -> float:
        """(false positives + false negatives + mislocalised) / all flags."""
        return self.errors / self.total if self.total else 0.0

    @property
    def error_rate_ci(self) -> tuple[float, float] | None:
        """95% Wilson interval of the error rate (None with no flags)."""
        return wilson_interval(self.errors, self.total)

    @property
    def rates_ci(self) -> dict[str, tuple[float, float] | None]:
        """95% Wilson interval of each verdict's rate."""
        return {k: wilson_interval(n, self.total) for k, n in self.counts.items()}

    def to_dict(self) -> dict[str, Any]:
        def pair(ci: tuple[float, float] | None) -> list[float] | None:
            return None if ci is None else [ci[0], ci[1]]

        return {"total": self.total, "counts": self.counts, "rates": self.rates,
                "rates_ci95": {k: pair(v) for k, v in self.rates_ci.items()}, "errors": self.errors,
                "error_rate": self.error_rate, "error_rate_ci95": pair(self.error_rate_ci)}


@dataclass(frozen=True)
class GroupTest:
    """One group's error rate against the rest of its split."""

    group: str
    errors: int
    total: int
    rest_errors: int
    rest_total: int
    odds_ratio: float
    p: float
    """Two-sided Fisher's exact p value."""
    p_adjusted: float
    """Holm-adjusted over the groups of the split."""

    @property
    def significant(self) -> bool:
        return self.p_adjusted < ALPHA

    @property
    def direction(self) -> str:
        """``higher`` or ``lower`` than the rest (by rate), ``same`` when equal."""
        mine = self.errors / self.total if self.total else 0.0
        rest = self.rest_errors / self.rest_total if self.rest_total else 0.0
        return "higher" if mine > rest else "lower" if mine < rest else "same"

    def to_dict(self) -> dict[str, Any]:
        return {"errors": self.errors, "total": self.total, "rest_errors": self.rest_errors,
                "rest_total": self.rest_total, "odds_ratio": _finite(self.odds_ratio), "p": self.p,
                "p_adjusted": self.p_adjusted, "significant": self.significant, "direction": self.direction}


@dataclass(frozen=True)
class SplitTest:
    """Does the error rate differ between the groups of one split, and which group differs?"""

    groups: dict[str, GroupTest]
    chi2: float | None = None
    dof: int = 0
    chi2_p: float | None = None
    min_expected: float | None = None
    """The smallest expected cell count of the chi-square table (below 5: the test is approximate)."""

    @property
    def significant_groups(self) -> list[str]:
        return [g for g, t in self.groups.items() if t.significant]

    def to_dict(self) -> dict[str, Any]:
        return {"groups": {g: t.to_dict() for g, t in self.groups.items()},
                "significant": self.significant_groups,
                "chi_square": None if self.chi2 is None else {
                    "statistic": self.chi2, "dof": self.dof, "p": self.chi2_p, "min_expected": self.min_expected}}


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p values (same order as given)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def split_test(groups: dict[str, VerdictCounts]) -> SplitTest:
    """Fisher's exact test of each group against the rest (Holm over the groups) and the omnibus
    chi-square over all groups; a split with one group (or no flags) has nothing to compare."""
    live = {g: c for g, c in groups.items() if c.total}
    if len(live) < 2:
        return SplitTest({})
    all_errors = sum(c.errors for c in live.values())
    all_total = sum(c.total for c in live.values())
    raw = []
    for g, c in live.items():
        rest_e, rest_n = all_errors - c.errors, all_total - c.total
        two_by_two = [[c.errors, c.total - c.errors], [rest_e, rest_n - rest_e]]
        res = import_scipy_stats().fisher_exact(two_by_two, alternative="two-sided")
        raw.append((g, c, rest_e, rest_n, float(res.statistic), float(res.pvalue)))
    adjusted = holm([r[5] for r in raw])
    tests = {g: GroupTest(g, c.errors, c.total, rest_e, rest_n, odds, p, adj)
             for (g, c, rest_e, rest_n, odds, p), adj in zip(raw, adjusted)}
    table = np.array([[c.errors, c.total - c.errors] for c in live.values()])
    if table[:, 0].sum() == 0 or table[:, 1].sum() == 0:  # no errors, or nothing but errors: nothing to test
        return SplitTest(tests)
    chi = import_scipy_stats().chi2_contingency(table, correction=False)
    return SplitTest(tests, float(chi.statistic), int(chi.dof), float(chi.pvalue), float(chi.expected_freq.min()))


@dataclass(frozen=True)
class Agreement:
    """Chance-corrected agreement on verdicts between reviewers who judged the same images."""

    pairwise: list[dict[str, Any]] = field(default_factory=list)
    """``{"reviewers": [a, b], "n_items": n, "observed": p_o, "kappa": k | None, "kappa_ci95": [lo, hi] | None}``
    per pair (Cohen)."""
    fleiss: dict[str, Any] | None = None
    """``{"reviewers": [...], "n_items": n, "kappa": k | None, "kappa_ci95": [lo, hi] | None}`` over images
    every reviewer judged (3+)."""


@dataclass(frozen=True)
class Summary:
    """Everything the summary view shows (JSON-ready through :meth:`to_dict`)."""

    overall: VerdictCounts
    by_model: dict[str, VerdictCounts]
    by_label: dict[str, VerdictCounts]
    by_attribute: dict[str, dict[str, VerdictCounts]]
    agreement: Agreement
    tests: dict[str, SplitTest] = field(default_factory=dict)
    """Per split ("model", "label", each of :data:`SPLIT_ATTRIBUTES`): does a group's error rate differ?"""

    def splits(self) -> list[tuple[str, dict[str, VerdictCounts]]]:
        """(split name, groups) in display order: model, label, then the header attributes."""
        return [("model", self.by_model), ("label", self.by_label),
                *[(a, self.by_attribute[a]) for a in SPLIT_ATTRIBUTES]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_dict(),
            "by_model": {k: v.to_dict() for k, v in self.by_model.items()},
            "by_label": {k: v.to_dict() for k, v in self.by_label.items()},
            "by_attribute": {a: {k: v.to_dict() for k, v in g.items()} for a, g in self.by_attribute.items()},
            "tests": {name: t.to_dict() for name, t in self.tests.items()},
            "agreement": {"pairwise": self.agreement.pairwise, "fleiss": self.agreement.fleiss},
            "methods": {"intervals": INTERVAL_METHOD, "tests": TEST_METHOD, "alpha": ALPHA, "kappa": KAPPA_METHOD},
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
    summary = Summary(
        overall=VerdictCounts.of(live),
        by_model=_grouped(live, model_key),
        by_label=_grouped(live, lambda f: f.label),
        by_attribute={a: _grouped(live, lambda f, a=a: getattr(f.headers, a)) for a in SPLIT_ATTRIBUTES},
        agreement=agreement(live),
    )
    return Summary(summary.overall, summary.by_model, summary.by_label, summary.by_attribute, summary.agreement,
                   {name: split_test(groups) for name, groups in summary.splits()})


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


def _codes(*columns: Sequence[str]) -> tuple[list[np.ndarray], int]:
    cats = sorted({c for col in columns for c in col})
    index = {c: i for i, c in enumerate(cats)}
    return [np.array([index[c] for c in col], dtype=np.int64) for col in columns], len(cats)


def _interval(values: np.ndarray) -> list[float] | None:
    """The central 95% of the finite bootstrap values (None when most resamples are undefined)."""
    finite = values[np.isfinite(values)]
    if finite.size < 0.5 * values.size:
        return None
    lo, hi = np.quantile(finite, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return [float(lo), float(hi)]


def _multinomial_resamples(weights: np.ndarray) -> np.ndarray:
    """Bootstrap resamples of items, as counts per distinct kind of item (resamples x kinds).

    Resampling n items with replacement is a multinomial draw of n over the distinct kinds
    (a rater pair's verdict cell, or one image's pattern of verdict counts) with their observed
    shares: the same distribution as drawing item indices, at a cost that does not grow with n.
    """
    n = int(weights.sum())
    return np.random.default_rng(BOOTSTRAP_SEED).multinomial(n, weights / n, size=BOOTSTRAP_RESAMPLES)


def cohen_kappa_ci(a: Sequence[str], b: Sequence[str]) -> list[float] | None:
    """95% percentile bootstrap interval of Cohen's kappa, resampling the items (fixed seed)."""
    if len(a) != len(b):
        raise ValueError("both raters must rate the same items")
    n = len(a)
    if n < 2:
        return None
    (ca, cb), k = _codes(a, b)
    cells = np.bincount(ca * k + cb, minlength=k * k).astype(np.float64)
    tables = _multinomial_resamples(cells).reshape(-1, k, k) / n
    observed = np.trace(tables, axis1=1, axis2=2)
    expected = (tables.sum(axis=2) * tables.sum(axis=1)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(expected < 1.0 - 1e-12, (observed - expected) / (1.0 - expected), np.nan)
    return _interval(kappa)


def fleiss_kappa_ci(table: Sequence[Sequence[str]]) -> list[float] | None:
    """95% percentile bootstrap interval of Fleiss' kappa, resampling the items (fixed seed)."""
    if len(table) < 2:
        return None
    m = len(table[0])
    if m < 2 or any(len(row) != m for row in table):
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings per item")
    n = len(table)
    cols, k = _codes(*[[row[j] for row in table] for j in range(m)])
    counts = np.zeros((n, k))
    for col in cols:
        counts[np.arange(n), col] += 1
    patterns, multiplicity = np.unique(counts, axis=0, return_counts=True)
    p_item = ((patterns ** 2).sum(axis=1) - m) / (m * (m - 1))
    draws = _multinomial_resamples(multiplicity.astype(np.float64)).astype(np.float64)
    p_bar = draws @ p_item / n
    p_e = ((draws @ patterns / (n * m)) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(p_e < 1.0 - 1e-12, (p_bar - p_e) / (1.0 - p_e), np.nan)
    return _interval(kappa)


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
            "kappa_ci95": cohen_kappa_ci(va, vb),
        })
    fleiss = None
    if len(reviewers) >= 3:
        common = set.intersection(*(set(ratings[r]) for r in reviewers))
        if common:
            table = [[ratings[r][i] for r in reviewers] for i in sorted(common, key=repr)]
            fleiss = {"reviewers": reviewers, "n_items": len(table), "kappa": fleiss_kappa(table),
                      "kappa_ci95": fleiss_kappa_ci(table)}
    return Agreement(pairwise, fleiss)


def _ci_text(ci: tuple[float, float] | list[float] | None, percent: bool = True) -> str:
    if ci is None:
        return "-"
    return f"{ci[0]:.0%}-{ci[1]:.0%}" if percent else f"{ci[0]:.2f} to {ci[1]:.2f}"


def format_summary(summary: Summary) -> str:
    """A plain-text rendering (CLI and the panel's summary view): rates with their 95% Wilson
    intervals, Holm-adjusted p of each group against the rest, ``+``/``-`` (higher/lower) where
    that is below ALPHA."""
    verdicts = [v.value for v in Verdict]
    short = {"correct": "correct", "false_positive": "FP", "false_negative": "FN (missed)",
             "mislocalised": "misloc.", "uncertain": "unsure"}
    widths = [max(8, len(short[v]) + 2) for v in verdicts]
    head = (f"{'':<24}{'n':>5}{'errors':>8}{'95% CI':>10}{'p adj.':>8}"
            + "".join(f"{short[v]:>{w}}" for v, w in zip(verdicts, widths)))

    def line(name: str, c: VerdictCounts, test: GroupTest | None = None) -> str:
        mark = (" +" if test.direction == "higher" else " -") if test is not None and test.significant else ""
        p = "" if test is None else "<0.001" if test.p_adjusted < 0.001 else f"{test.p_adjusted:.3f}"
        return (f"{(name[:22 - len(mark)] + mark):<24}{c.total:>5}{c.error_rate:>8.0%}{_ci_text(c.error_rate_ci):>10}"
                f"{p:>8}" + "".join(f"{c.counts[v]:>{w}}" for v, w in zip(verdicts, widths)))

    out = [head, line("all flags", summary.overall)]
    for title, groups in summary.splits():
        test = summary.tests.get(title, SplitTest({}))
        omnibus = "" if test.chi2_p is None else (
            f" (chi-square {test.chi2:.1f}, {test.dof} df, p {test.chi2_p:.3g}"
            + (", approximate: expected counts < 5" if (test.min_expected or 0) < 5 else "") + ")")
        out.append(f"-- by {title.replace('_', ' ')}{omnibus}")
        out += [line(k, c, test.groups.get(k)) for k, c in groups.items()]
    out.append(f"errors: false positive + false negative + mislocalised; 95% CI: {INTERVAL_METHOD}.")
    out += textwrap.wrap(f"p adj.: {TEST_METHOD}.", 110)
    out.append(f"+ / -: the group's error rate is higher / lower than the rest's beyond chance (p adj. < {ALPHA:g}).")
    out.append("-- agreement between reviewers")
    if not summary.agreement.pairwise:
        out.append("no image was judged by two reviewers")
    for p in summary.agreement.pairwise:
        k = "undefined" if p["kappa"] is None else f"{p['kappa']:.3f}"
        ci = "" if p.get("kappa_ci95") is None else f" (95% CI {_ci_text(p['kappa_ci95'], percent=False)})"
        out.append(f"{p['reviewers'][0]} vs {p['reviewers'][1]}: {p['n_items']} images, "
                   f"agreement {p['observed']:.1%}, Cohen's kappa {k}{ci}")
    if summary.agreement.fleiss:
        f = summary.agreement.fleiss
        k = "undefined" if f["kappa"] is None else f"{f['kappa']:.3f}"
        ci = "" if f.get("kappa_ci95") is None else f" (95% CI {_ci_text(f['kappa_ci95'], percent=False)})"
        out.append(f"all {len(f['reviewers'])} reviewers: {f['n_items']} images, Fleiss' kappa {k}{ci}")
    if summary.agreement.pairwise or summary.agreement.fleiss:
        out.append(f"kappa 95% CI: {KAPPA_METHOD}.")
    return "\n".join(out)


# -- the plot's rows (GUI-free: the review panel draws them) ---------------------------------------
#: The splits the panel's error-rate plot shows, with their titles.
PLOT_SPLITS = (("patient_sex", "Sex"), ("age_band", "Age band"), ("manufacturer", "Manufacturer"),
               ("scanner_model", "Scanner"), ("kvp", "kVp"), ("body_part", "Body part"))


@dataclass(frozen=True)
class RateRow:
    """One subgroup's error rate with its 95% Wilson interval, as the plot draws it."""

    split: str
    title: str
    group: str
    errors: int
    total: int
    rate: float
    low: float
    high: float
    p_adjusted: float | None
    mark: str
    """``higher`` / ``lower`` when the group differs from the rest beyond chance, else ``""``."""


def rate_rows(summary: Summary, splits: Sequence[tuple[str, str]] = PLOT_SPLITS) -> list[RateRow]:
    """The plot's rows, split by split in :data:`PLOT_SPLITS` order, groups in the summary's order."""
    rows = []
    for key, title in splits:
        groups = summary.by_attribute.get(key, {})
        tests = summary.tests.get(key, SplitTest({})).groups
        for group, counts in groups.items():
            ci = counts.error_rate_ci
            if ci is None:
                continue
            test = tests.get(group)
            mark = test.direction if test is not None and test.significant else ""
            rows.append(RateRow(key, title, group, counts.errors, counts.total, counts.error_rate, ci[0], ci[1],
                                None if test is None else test.p_adjusted, mark))
    return rows

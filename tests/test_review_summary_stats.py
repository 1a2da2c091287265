"""The summary's uncertainty: Wilson intervals against closed forms and published values, Holm's
adjustment, a planted high-error subgroup flagged while random splits are not, kappa intervals
that cover the truth, and the CLI's JSON and text carrying all of it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.support.review_flags import make_flag, planted_flags
from viewer.cli import main
from viewer.review import ReviewStore, StudyHeader
from viewer.review.model import HeaderAttributes, Verdict
from viewer.review.summary import (
    cohen_kappa,
    cohen_kappa_ci,
    fleiss_kappa,
    fleiss_kappa_ci,
    format_summary,
    holm,
    summarize,
    wilson_interval,
)

Z = 1.959963984540054  # the 97.5% normal quantile


def _wilson_by_quadratic(k: int, n: int) -> tuple[float, float]:
    """The Wilson bounds as the roots of (p_hat - p)^2 = z^2 p (1 - p) / n (independent of scipy)."""
    p_hat = k / n
    a = 1 + Z * Z / n
    b = -(2 * p_hat + Z * Z / n)
    c = p_hat * p_hat
    disc = math.sqrt(max(b * b - 4 * a * c, 0.0))
    return (-b - disc) / (2 * a), (-b + disc) / (2 * a)


@pytest.mark.parametrize(("k", "n", "published"), [
    (0, 8, (0.0, 0.3244)),  # Newcombe (1998) style tables: upper bound z^2 / (n + z^2)
    (4, 8, (0.2152, 0.7848)),
    (400, 800, (0.4654, 0.5346)),
    (1, 10, (0.0179, 0.4042)),
])
def test_wilson_interval_matches_closed_form_and_published_values(k: int, n: int, published: tuple) -> None:
    lo, hi = wilson_interval(k, n)
    exact = _wilson_by_quadratic(k, n)
    assert lo == pytest.approx(exact[0], abs=1e-9) and hi == pytest.approx(exact[1], abs=1e-9)
    assert lo == pytest.approx(published[0], abs=1e-4) and hi == pytest.approx(published[1], abs=1e-4)
    assert wilson_interval(0, 0) is None


def test_half_of_8_is_far_less_certain_than_half_of_800() -> None:
    (lo8, hi8), (lo800, hi800) = wilson_interval(4, 8), wilson_interval(400, 800)
    assert hi8 - lo8 > 8 * (hi800 - lo800)


def test_holm_adjustment_by_hand() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # 0.5 x 2 = 1; 0.9 x 1 kept monotone at 1
    assert holm([0.2]) == [0.2]


def test_planted_subgroup_is_flagged_and_random_splits_are_not() -> None:
    summary = summarize(planted_flags())
    makers = summary.tests["manufacturer"]
    higher = [g for g in makers.significant_groups if makers.groups[g].direction == "higher"]
    assert higher == ["CANON"]
    # against a rest that holds CANON, the others err less: marked as lower, never as higher
    assert all(makers.groups[g].direction == "lower" for g in makers.significant_groups if g != "CANON")
    canon = makers.groups["CANON"]
    assert canon.direction == "higher" and canon.p_adjusted < 1e-6 and canon.p_adjusted >= canon.p
    assert makers.chi2_p is not None and makers.chi2_p < 1e-6 and makers.dof == 3
    rate = summary.by_attribute["manufacturer"]["CANON"]
    lo, hi = rate.error_rate_ci
    assert lo < rate.error_rate < hi and lo > 0.4  # clearly above the others' 15%
    for split in ("patient_sex", "age_band", "kvp", "label", "model"):
        assert summary.tests[split].significant_groups == [], split
    assert summary.tests["body_part"].groups == {}  # one group: nothing to compare it with


def test_a_small_group_with_a_high_rate_is_not_called_different_by_chance() -> None:
    """4 errors in 8 flags among 600 at ~15%: raw Fisher p is small, but after Holm over the
    groups and with so few flags the interval is wide (the point of the issue)."""
    flags = planted_flags(600, planted_share=0.0)  # no planted group
    odd = [make_flag(1000 + i, Verdict.FALSE_POSITIVE if i < 4 else Verdict.CORRECT,
                     HeaderAttributes(manufacturer="AGFA", patient_sex="F")) for i in range(8)]
    summary = summarize(flags + odd)
    agfa = summary.by_attribute["manufacturer"]["AGFA"]
    assert agfa.error_rate == 0.5
    lo, hi = agfa.error_rate_ci
    assert lo < 0.25 and hi > 0.75
    test = summary.tests["manufacturer"].groups["AGFA"]
    assert test.p_adjusted > test.p


def _population(pi: np.ndarray, r: float) -> tuple[np.ndarray, float]:
    """P(rating | true category) when a rater reports the truth with probability r, else a uniform
    category; and the population kappa of two (or more) such raters."""
    k = len(pi)
    conf = r * np.eye(k) + (1 - r) / k
    marginal = pi @ conf
    agree = float(sum(pi[t] * (conf[t] ** 2).sum() for t in range(k)))
    p_e = float((marginal ** 2).sum())
    return conf, (agree - p_e) / (1 - p_e)


def _ratings(rng: np.random.Generator, pi: np.ndarray, conf: np.ndarray, n: int, raters: int) -> list[list[str]]:
    truth = rng.choice(len(pi), size=n, p=pi)
    return [[str(rng.choice(len(pi), p=conf[t])) for _ in range(raters)] for t in truth]


def test_cohen_kappa_interval_covers_the_truth() -> None:
    pi = np.array([0.6, 0.25, 0.15])
    conf, truth = _population(pi, r=0.7)
    rng = np.random.default_rng(2026)
    covered = 0
    for rep in range(60):
        rows = _ratings(rng, pi, conf, 200, 2)
        a, b = [r[0] for r in rows], [r[1] for r in rows]
        lo, hi = cohen_kappa_ci(a, b)
        assert lo <= cohen_kappa(a, b) <= hi
        covered += lo <= truth <= hi
        if rep == 0:
            assert lo <= truth <= hi  # the fixed-seed first sample
            assert cohen_kappa_ci(a, b) == [lo, hi]  # fixed seed: the same interval again
    assert covered >= 0.85 * 60  # nominal 95%; a broken interval (e.g. too narrow) falls well below


def test_fleiss_kappa_interval_covers_the_truth() -> None:
    pi = np.array([0.5, 0.3, 0.2])
    conf, truth = _population(pi, r=0.6)
    rng = np.random.default_rng(11)
    covered = 0
    for _ in range(40):
        table = _ratings(rng, pi, conf, 150, 4)
        lo, hi = fleiss_kappa_ci(table)
        assert lo <= fleiss_kappa(table) <= hi
        covered += lo <= truth <= hi
    assert covered >= 0.85 * 40


def test_summary_cli_json_and_text_carry_intervals_and_tests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flags = planted_flags(300, planted_share=0.2)
    second = [make_flag(5000 + i, Verdict.CORRECT if i % 3 else Verdict.FALSE_POSITIVE, f.headers, reviewer="bob",
                        image=f.sop_instance_uids[0]) for i, f in enumerate(flags[:60])]
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        store.merge_flags([(f, StudyHeader()) for f in flags + second])
    assert main(["review", "summary", "--json", "--store", str(tmp_path / "r.sqlite3")]) == 0
    doc = json.loads(capsys.readouterr().out)
    canon = doc["by_attribute"]["manufacturer"]["CANON"]
    lo, hi = canon["error_rate_ci95"]
    assert lo < canon["error_rate"] < hi
    assert set(canon["rates_ci95"]) == {v.value for v in Verdict}
    tests = doc["tests"]["manufacturer"]
    assert [g for g in tests["significant"] if tests["groups"][g]["direction"] == "higher"] == ["CANON"]
    assert doc["tests"]["manufacturer"]["groups"]["CANON"]["direction"] == "higher"
    assert "Holm" in doc["methods"]["tests"] and "Wilson" in doc["methods"]["intervals"]
    assert "bootstrap" in doc["methods"]["kappa"] and "seed 0" in doc["methods"]["kappa"]
    [pair] = doc["agreement"]["pairwise"]
    assert pair["kappa_ci95"][0] <= pair["kappa"] <= pair["kappa_ci95"][1]
    assert main(["review", "summary", "--store", str(tmp_path / "r.sqlite3")]) == 0
    text = capsys.readouterr().out
    canon_line = next(line for line in text.splitlines() if line.startswith("CANON"))
    assert canon_line.startswith("CANON +") and f"{lo:.0%}-{hi:.0%}" in canon_line
    assert "Holm" in text and "Cohen's kappa" in text and "(95% CI " in text
    assert format_summary(summarize([])).startswith(" " * 24)  # no flags: still a table, no crash


def test_kappa_interval_agrees_with_a_plain_index_bootstrap() -> None:
    """The summary resamples verdict cells (multinomial); drawing item indices directly, as a
    textbook bootstrap does, gives the same interval up to Monte Carlo noise."""
    pi = np.array([0.5, 0.3, 0.2])
    conf, _ = _population(pi, r=0.65)
    rows = _ratings(np.random.default_rng(5), pi, conf, 300, 2)
    a, b = [r[0] for r in rows], [r[1] for r in rows]
    idx = np.random.default_rng(99).integers(0, 300, size=(1500, 300))
    plain = [cohen_kappa([a[i] for i in row], [b[i] for i in row]) for row in idx]
    lo, hi = np.quantile([k for k in plain if k is not None], [0.025, 0.975])
    ours = cohen_kappa_ci(a, b)
    assert ours[0] == pytest.approx(lo, abs=0.02) and ours[1] == pytest.approx(hi, abs=0.02)

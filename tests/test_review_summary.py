"""Summary: counts per verdict/model/label/header group, and reviewer agreement (known values)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.review_series import context_of, make_ct_series
from viewer.review import ModelInfo, ReviewStore
from viewer.review.summary import cohen_kappa, fleiss_kappa, format_summary, summarize


def test_cohen_kappa_textbook_example() -> None:
    # 50 items: both yes 20, A yes/B no 5, A no/B yes 10, both no 15 -> p_o 0.7, p_e 0.5, kappa 0.4
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert cohen_kappa(["y", "y"], ["y", "y"]) is None  # chance agreement is 1: undefined
    with pytest.raises(ValueError):
        cohen_kappa(["y"], [])


def test_fleiss_kappa_textbook_example() -> None:
    # Fleiss (1971) as tabulated on Wikipedia: 10 items, 14 raters, 5 categories -> 0.210
    counts = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
              [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    table = [[str(cat) for cat, n in enumerate(row) for _ in range(n)] for row in counts]
    assert fleiss_kappa(table) == pytest.approx(0.2099, abs=1e-4)


def test_summary_counts_splits_and_agreement(tmp_path: Path) -> None:
    ge = make_ct_series(tmp_path / "ge", 4, manufacturer="GE", sex="F", age="045Y")
    siemens = make_ct_series(tmp_path / "sie", 2, manufacturer="SIEMENS", sex="M", age="071Y", kvp=100)
    v2 = ModelInfo("chest-nodule-demo", "2.0.0", "cd" * 32)
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        # reviewer a and b judge the 4 GE slices: agree on 0, 1, 2; disagree on 3
        for k, (va, vb) in enumerate([("correct", "correct"), ("false_positive", "false_positive"),
                                      ("correct", "correct"), ("correct", "false_positive")]):
            store.add_flag(context_of(ge[k], k), va, "nodule", reviewer="a")
            store.add_flag(context_of(ge[k], k), vb, "nodule", reviewer="b")
        store.add_flag(replace(context_of(siemens[0], 0), model=v2), "missed", "nodule", reviewer="a")
        store.add_flag(replace(context_of(siemens[1], 1), model=v2), "correct", "effusion", reviewer="a")
        gone = store.add_flag(context_of(siemens[1], 1), "uncertain", "nodule", reviewer="a")
        store.delete_flag(gone)
        summary = summarize(store.flags(include_deleted=True))
    assert summary.overall.total == 10
    assert summary.overall.counts == {"correct": 6, "false_positive": 3, "false_negative": 1,
                                      "mislocalised": 0, "uncertain": 0}
    assert summary.by_model["chest-nodule-demo 1.0.0"].total == 8
    assert summary.by_model["chest-nodule-demo 2.0.0"].counts["false_negative"] == 1
    assert summary.by_label["effusion"].total == 1 and summary.by_label["nodule"].total == 9
    by_maker = summary.by_attribute["manufacturer"]
    assert by_maker["GE"].error_rate == pytest.approx(3 / 8)
    assert by_maker["SIEMENS"].error_rate == pytest.approx(1 / 2)
    assert set(summary.by_attribute["age_band"]) == {"40-49", "70-79"}
    assert summary.by_attribute["kvp"]["100"].total == 2
    assert summary.by_attribute["patient_sex"]["M"].rates["correct"] == pytest.approx(0.5)
    [pair] = summary.agreement.pairwise
    assert pair["reviewers"] == ["a", "b"] and pair["n_items"] == 4 and pair["observed"] == 0.75
    # a: C F C C, b: C F C F -> p_o .75, p_e = (3*2 + 1*2)/16 = .5 -> kappa .5
    assert pair["kappa"] == pytest.approx(0.5)
    assert summary.agreement.fleiss is None
    text = format_summary(summary)
    assert "a vs b: 4 images, agreement 75.0%, Cohen's kappa 0.500" in text
    assert summary.to_dict()["by_label"]["nodule"]["total"] == 9


def test_fleiss_over_images_all_three_reviewers_judged(tmp_path: Path) -> None:
    ct = make_ct_series(tmp_path / "ct", 4)
    ratings = {"a": "CCF", "b": "CCF", "c": "CFF"}  # image 0: C C C, image 1: C C F, image 2: F F F
    with ReviewStore(tmp_path / "r.sqlite3") as store:
        for reviewer, verdicts in ratings.items():
            for k, v in enumerate(verdicts):
                store.add_flag(context_of(ct[k], k), "correct" if v == "C" else "false_positive", "nodule",
                               reviewer=reviewer)
        store.add_flag(context_of(ct[3], 3), "correct", "nodule", reviewer="a")  # judged by one only
        agreement = summarize(store.flags()).agreement
    # P_bar = 7/9, p_e = (5/9)^2 + (4/9)^2 = 41/81 -> kappa = (63 - 41) / (81 - 41) = 0.55
    assert agreement.fleiss is not None
    lo, hi = agreement.fleiss.pop("kappa_ci95")  # 3 images: a wide bootstrap interval around 0.55
    assert -1.0 <= lo <= 0.55 <= hi <= 1.0
    assert agreement.fleiss == {"reviewers": ["a", "b", "c"], "n_items": 3, "kappa": pytest.approx(0.55)}
    assert [p["n_items"] for p in agreement.pairwise] == [3, 3, 3]
    assert agreement.pairwise[0]["kappa"] == pytest.approx(1.0)  # a and b agree on everything

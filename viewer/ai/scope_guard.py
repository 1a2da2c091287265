"""Intended use of the shown series for the chosen model (Qt-free): when the AI runs by itself, what the panel
says when it does not, the confirmation before a run by hand, and the banner on every view while results outside
intended use show.

:class:`ScopeGuard` is held by the AI control (:mod:`viewer.state.ai_control`): it evaluates the card's rules on
the shown series (:mod:`viewer.ai.scope`), watches the first slices' out-of-distribution distances of an
automatic run (most of the first :data:`OOD_SAMPLE` flagged: the run stops and its overlay is removed), and
words the series' banner (``SeriesState.set_banner``) for runs the user forced. A series whose plane the model
reads only through a reformat is no blocker: the control runs it on reformats (:mod:`viewer.ai.reformat_run`).
The viewer's confirmation (a Yes/No box) is :mod:`viewer.qt.ai_scope`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from viewer.ai.scope import ScopeDecision, scope_of_stack

if TYPE_CHECKING:
    from viewer.ai.results import SeriesResults

OOD_SAMPLE = 8
"""Slices of an automatic run whose OOD distances decide whether it goes on (all of a shorter series); a run on
reformats sampled finer than the acquired data along their normal checks as many more (the same slab)."""
BANNER_PREFIX = "outside intended use: "


class ScopeGuard:
    """The intended-use state of the shown series for the chosen model."""

    def __init__(self, confirm: Callable[[str], bool] | None = None) -> None:
        self.confirm: Callable[[str], bool] = confirm or (lambda text: False)
        """Asked before a run by hand outside intended use (the viewer asks the user; without one: no)."""
        self.decision: ScopeDecision | None = None
        self.ood_reason = ""
        """Why an automatic run was stopped after its first slices ('' when it was not)."""
        self.forced = False
        """The user ran the model although the series is outside its intended use."""

    def reset(self) -> None:
        self.decision, self.ood_reason, self.forced = None, "", False

    def evaluate(self, card: Any, volume: Any) -> ScopeDecision:
        """The card's rules on the shown series (kept as `decision`)."""
        self.decision = scope_of_stack(card, volume)
        self.ood_reason = ""
        return self.decision

    def blockers(self) -> list[str]:
        """Why the model must not run by itself on this series (empty: it may)."""
        d = self.decision
        out = list(d.reasons) if d is not None else []
        if self.ood_reason:
            out.append(self.ood_reason)
        return out

    def not_run_text(self, model: str) -> str:
        return f"{model} not run: {'; '.join(self.blockers())}. Press Run to run it anyway."

    def ask(self, model: str) -> bool:
        """Confirm a run by hand outside intended use; on yes, runs are forced until the series changes."""
        reasons = self.blockers()
        if not reasons:
            return True
        if self.confirm(f"This series is outside {model}'s intended use:\n\n" + "\n".join(f"- {r}" for r in reasons)
                        + "\n\nIts results will carry an 'outside intended use' banner. Run it anyway?"):
            self.forced = True
            return True
        return False

    def banner(self) -> str:
        """The views' banner for a forced run ('' otherwise)."""
        return BANNER_PREFIX + "; ".join(self.blockers()) if self.forced and self.blockers() else ""

    def ood_check(self, results: SeriesResults, threshold: float | None) -> str | None:
        """For an automatic run: None while undecided; '' once enough slices passed; the reason when most
        of the first slices are out of distribution."""
        if threshold is None or self.forced:
            return ""
        seen = np.isfinite(results.ood)
        need = min(OOD_SAMPLE * results.slices_per_acquired, results.shape[0])
        if int(seen.sum()) < need:
            return None
        flagged = results.ood[seen] > threshold
        if flagged.mean() > 0.5:
            self.ood_reason = (f"images unlike the training data: {int(flagged.sum())} of {int(seen.sum())} "
                               f"{results.slice_noun} checked")
            return self.ood_reason
        return ""

    def ood_summary(self, results: SeriesResults, threshold: float | None) -> str:
        """'K of N slices unlike the training data' over the slices run so far ('' without statistics)."""
        if threshold is None:
            return ""
        seen = np.isfinite(results.ood)
        if not seen.any():
            return ""
        k = int((results.ood[seen] > threshold).sum())
        return f"{k} of {int(seen.sum())} {results.slice_noun} above 1"

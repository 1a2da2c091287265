"""Hostile-corpus generator: cases built at test time into a temporary folder (nothing large committed).

Each module holds the builders for one area (``dicom``, ``archives``; model packages, review files and
cache entries in their own modules). A builder is registered with :func:`case` and receives an empty
folder; it writes the hostile input there and returns the path a command should open. The :class:`Case`
says what must happen: the input is refused or reported (``error`` / ``warning``) with a message that
contains every string in ``mentions``, and whatever good data sits beside it still loads (``good``).

Tests iterate over :func:`cases` (``area=...``) with ``pytest.mark.parametrize(..., ids=case_ids)`` and call
:meth:`Case.build`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Outcome = Literal["error", "warning", "refused", "loads"]
"""``error``: a per-item error naming the input; ``warning``: loads with a warning; ``refused``: the
command fails cleanly (exit status != 0, no traceback); ``loads``: nothing to report (a hostile-looking
but legal input)."""

Builder = Callable[[Path], Path]


@dataclass(frozen=True)
class Case:
    """One hostile input and what must happen to it."""

    name: str
    area: str
    builder: Builder = field(repr=False, compare=False)
    outcome: Outcome = "error"
    mentions: tuple[str, ...] = ()
    """Substrings (case-insensitive) the error or warning must contain; the test adds the file's name."""
    good: int = 0
    """How many good items (series, models, flags...) built beside the bad one must still load."""
    extra: dict[str, object] = field(default_factory=dict, compare=False)
    """Anything else an area's test needs (e.g. the member names that must be errors)."""

    def build(self, folder: Path) -> Path:
        """Write the case under ``folder`` (created) and return the path to open."""
        folder.mkdir(parents=True, exist_ok=True)
        return self.builder(folder)


_REGISTRY: dict[str, Case] = {}


def case(
    name: str,
    area: str,
    outcome: Outcome = "error",
    mentions: tuple[str, ...] = (),
    good: int = 0,
    **extra: object,
) -> Callable[[Builder], Builder]:
    """Decorator registering a builder as a hostile case (names are unique across areas)."""

    def register(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"hostile case {name!r} registered twice")
        _REGISTRY[name] = Case(name, area, builder, outcome, tuple(mentions), good, dict(extra))
        return builder

    return register


def _load_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def cases(area: str | None = None) -> list[Case]:
    """Every registered case (of one area), in name order."""
    _load_all()
    return sorted((c for c in _REGISTRY.values() if area is None or c.area == area), key=lambda c: c.name)


def case_ids(c: Case) -> str:
    """pytest id of a case."""
    return c.name

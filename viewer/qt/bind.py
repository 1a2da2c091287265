"""Subscribing Qt objects to the Qt-free state's psygnal events.

psygnal holds bound methods weakly, but a Qt object's Python wrapper can outlive its C++ side (a closed,
deleted widget): :class:`Bindings` calls a widget's method only while the widget is alive, disconnects it
otherwise, and disconnects everything it made at once (:meth:`Bindings.clear`) when the widget follows
another state object. An error in one widget's method is reported (``sys.excepthook``, as Qt does for a
slot) and does not keep the event from the other subscribers.
"""

from __future__ import annotations

import inspect
import sys
import weakref
from collections.abc import Callable
from typing import Any

from viewer.qt.qt import is_alive


def _max_args(method: Callable[..., Any]) -> int | None:
    """How many positional arguments ``method`` takes (None: any number)."""
    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


class Bindings:
    """The subscriptions one Qt object made to psygnal events."""

    def __init__(self) -> None:
        self._made: list[tuple[Any, Callable[..., None]]] = []

    def connect(self, signal: Any, method: Callable[..., Any]) -> None:
        """Call the bound ``method`` of a Qt object on ``signal`` (with as many of its arguments as it takes)
        while that object is alive."""
        ref = weakref.WeakMethod(method)  # type: ignore[arg-type]
        n = _max_args(method)

        def call(*args: Any) -> None:
            m = ref()
            if m is None or not is_alive(getattr(m, "__self__", None)):
                signal.disconnect(call)
                return
            try:
                m(*(args if n is None else args[:n]))
            except Exception:  # as a Qt slot's error: reported, and the event still reaches the others
                sys.excepthook(*sys.exc_info())

        signal.connect(call)
        self._made.append((signal, call))

    def clear(self) -> None:
        """Disconnect everything made through this object."""
        for signal, call in self._made:
            signal.disconnect(call)
        self._made.clear()

    def __len__(self) -> int:
        return len(self._made)

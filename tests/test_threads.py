"""Background threads run below the GUI thread's priority, and what they start inherits it (Linux)."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from viewer.threads import BACKGROUND_NICE, lower_thread_priority

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_lowered_thread_and_its_children_are_nicer_and_the_caller_is_untouched() -> None:
    before = _nice()
    seen: dict[str, int] = {}

    def child() -> None:
        seen["child"] = _nice()

    def background() -> None:
        lower_thread_priority()
        seen["thread"] = _nice()
        t = threading.Thread(target=child)  # e.g. a decode pool or torch's CPU pool
        t.start()
        t.join()

    t = threading.Thread(target=background)
    t.start()
    t.join()
    assert seen["thread"] == max(before, BACKGROUND_NICE)
    assert seen["child"] == seen["thread"]
    assert _nice() == before  # the calling (GUI) thread keeps its priority


def test_never_raises_priority() -> None:
    seen: dict[str, int] = {}

    def background() -> None:
        lower_thread_priority(BACKGROUND_NICE + 3)
        lower_thread_priority(1)  # asking for less nice must not raise the priority back
        seen["nice"] = _nice()

    t = threading.Thread(target=background)
    t.start()
    t.join()
    assert seen["nice"] >= BACKGROUND_NICE + 3

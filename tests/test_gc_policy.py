"""GC policy: collection paused around long-lived allocations, which are frozen once per reason."""

from __future__ import annotations

import gc
import threading
import uuid
import weakref

from viewer.gc_policy import collection_paused, freeze_once


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector can free it


def _reason() -> str:
    return f"test-{uuid.uuid4()}"  # freezing happens once per reason per process


def test_collection_paused_disables_then_freezes_and_restores() -> None:
    assert gc.isenabled()
    before = gc.get_freeze_count()
    try:
        with collection_paused(freeze=_reason()):
            assert not gc.isenabled()
            with collection_paused():  # nested (e.g. two loads): still off inside
                assert not gc.isenabled()
            assert not gc.isenabled()
            kept = [Node() for _ in range(1000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= before + 1000  # what was allocated inside is frozen
        assert all(not any(o is n for o in gc.get_objects(2)) for n in kept[:3])
    finally:
        gc.unfreeze()


def test_a_second_load_for_the_same_reason_stays_collectable() -> None:
    """Frozen objects are never collected: a replaced model's cycles must not be frozen again."""
    reason = _reason()
    try:
        with collection_paused(freeze=reason):
            pass
        with collection_paused(freeze=reason):
            second = Node()
        ref = weakref.ref(second)
        del second
        gc.collect()
        assert ref() is None  # not frozen: the collector freed the cycle
        assert not freeze_once(reason) and freeze_once(_reason())
    finally:
        gc.unfreeze()


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        with collection_paused(freeze=_reason()):
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()


def test_pause_from_another_thread_is_process_wide() -> None:
    inside, release = threading.Event(), threading.Event()

    def worker() -> None:
        with collection_paused():
            inside.set()
            release.wait(5)

    t = threading.Thread(target=worker)
    t.start()
    try:
        assert inside.wait(5)
        assert not gc.isenabled()
    finally:
        release.set()
        t.join()
    assert gc.isenabled()


def test_frozen_objects_are_still_freed_by_reference_counting() -> None:
    class Plain:
        pass

    obj = Plain()
    ref = weakref.ref(obj)
    try:
        assert freeze_once(_reason()) and gc.get_freeze_count() >= 1
        del obj
        assert ref() is None
    finally:
        gc.unfreeze()

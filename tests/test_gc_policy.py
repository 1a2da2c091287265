"""GC policy: collection paused around long-lived allocations, which are then frozen."""

from __future__ import annotations

import gc
import threading

from viewer.gc_policy import collection_paused, freeze_long_lived


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector can free it


def test_collection_paused_disables_then_freezes_and_restores() -> None:
    assert gc.isenabled()
    before = gc.get_freeze_count()
    try:
        with collection_paused():
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


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        with collection_paused():
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
        gc.unfreeze()
    assert gc.isenabled()


def test_freeze_counts_and_reference_counting_still_frees() -> None:
    import weakref

    class Plain:
        pass

    obj = Plain()
    ref = weakref.ref(obj)
    try:
        assert freeze_long_lived() >= 1
        del obj
        assert ref() is None  # frozen objects are still freed when their last reference goes
    finally:
        gc.unfreeze()

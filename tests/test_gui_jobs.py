"""viewer.qt.jobs.Worker, the viewer's one worker style: own threads (niced unless the user waits on the
work), results through Qt signals queued to the GUI thread, clean ends (flush, shutdown, deleted mid-task)."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from tests.conftest import pydicom_test_file
from viewer.qt.jobs import Worker
from viewer.qt.qt import QObject, Signal
from viewer.qt.workers import ScanJob

pytestmark = [pytest.mark.gui]


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_background_threads_are_niced_and_the_scan_is_not(qtbot) -> None:  # type: ignore[no-untyped-def]
    worker = Worker("test-bg")
    seen = worker.submit(lambda: (threading.current_thread().name, _nice())).result(timeout=10)
    assert seen[0] == "test-bg" and seen[1] >= max(10, _nice())  # (the test itself may run niced)

    class Foreground(Worker):
        background = False

    assert Foreground("test-fg").submit(_nice).result(timeout=10) == _nice()
    worker.shutdown()


class Reply(QObject):
    got = Signal(object)


class Sink(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[object, str]] = []

    def on_got(self, value: object) -> None:
        self.items.append((value, threading.current_thread().name))


def test_results_come_back_through_signals_on_the_gui_thread_and_flush_waits(qtbot) -> None:  # type: ignore[no-untyped-def]
    reply, sink, worker = Reply(), Sink(), Worker("test-signals", threads=2)
    reply.got.connect(sink.on_got)
    gate = threading.Event()
    for n in range(4):
        worker.submit(lambda n=n: (gate.wait(10), reply.got.emit(n)))
    assert worker.busy and not worker.done
    assert not worker.flush(0.05)  # still held at the gate
    gate.set()
    assert worker.flush(10) and worker.done
    qtbot.waitUntil(lambda: len(sink.items) == 4, timeout=5000)
    assert sorted(v for v, _ in sink.items) == [0, 1, 2, 3]
    assert {t for _, t in sink.items} == {threading.main_thread().name}
    worker.shutdown()
    assert worker.submit(lambda: 1).cancelled()  # no work after shutdown


def test_an_error_is_carried_by_the_future_and_the_thread_goes_on(qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    reported: list[type] = []
    monkeypatch.setattr(sys, "excepthook", lambda kind, value, tb: reported.append(kind))
    worker = Worker("test-errors")
    failed = worker.submit(lambda: 1 / 0)
    assert isinstance(failed.exception(timeout=10), ZeroDivisionError) and reported == [ZeroDivisionError]
    assert worker.submit(lambda: 42).result(timeout=10) == 42
    worker.shutdown()


def test_scan_job_reports_on_the_gui_thread(qtbot) -> None:  # type: ignore[no-untyped-def]
    job = ScanJob([str(pydicom_test_file("CT_small.dcm"))])
    sink = Sink()
    job.finished.connect(sink.on_got)
    assert not job.done
    job.start()
    qtbot.waitUntil(lambda: bool(sink.items), timeout=20_000)
    result, thread = sink.items[0]
    assert thread == threading.main_thread().name and len(result.stacks) == 1  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: job.done, timeout=5000)

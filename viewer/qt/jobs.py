"""The viewer's one worker style: :class:`Worker` (the AI results cache) and :class:`Job`, one task on a
worker thread of its own (scan, load, thumbnails, PACS network tasks, a retrieval's rescans).

Inference and the layer inspector's probes do not use it: they run on the AI's one inference thread
through its scheduler (:mod:`viewer.ai.scheduler`, :mod:`viewer.qt.ai_worker`), which orders and cancels them.

Rules every worker follows:

- Work runs on the worker's own daemon Python threads (``threads`` of them, started on first use), not on
  Qt's shared QThreadPool. A thread lowered to background priority stays lowered (Linux lets a thread raise
  its niceness, never lower it back), so pooled threads reused by other work would inherit it; superqt's
  ``thread_worker`` runs on that pool, which is why it is not used here.
- ``background = True`` (the default) lowers each thread's priority before any work (:mod:`viewer.threads`),
  so the GUI thread wins the CPU; ``False`` for work the user is waiting on (the scan).
- Results come back only through Qt signals of a QObject living on the GUI thread, emitted from the worker
  thread: Qt delivers them queued to bound methods of GUI-thread objects. Never connect them to closures
  (a closure would run on the worker thread).
- A worker deleted with its window mid-task ends quietly (its signals have no C++ side left to emit from).
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from viewer.qt.qt import QObject, is_alive
from viewer.threads import lower_thread_priority

_STOP = object()


class Worker(QObject):
    """Runs submitted callables on its own background threads (see the module docstring)."""

    background = True
    """Lower each thread's priority below the GUI thread's (False: work the user is waiting on)."""

    def __init__(self, name: str, threads: int = 1, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thread_name = name
        self._work_n_threads = max(1, int(threads))
        self._work_queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._work_threads: list[threading.Thread] = []
        self._work_pending: set[Future[Any]] = set()
        self._work_lock = threading.Lock()
        self._work_closed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` on a worker thread; the Future says when it ended (its result, or its error)."""
        future: Future[Any] = Future()
        with self._work_lock:
            if self._work_closed:
                future.cancel()
                return future
            self._work_pending.add(future)
            if len(self._work_threads) < self._work_n_threads:
                t = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
                self._work_threads.append(t)
                t.start()
        future.add_done_callback(self._forget)
        self._work_queue.put((future, fn, args))
        return future

    def _loop(self) -> None:
        if self.background:
            lower_thread_priority()
        while True:
            item = self._work_queue.get()
            if item is _STOP:
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except RuntimeError as exc:
                if not is_alive(self):
                    future.set_result(None)  # the window closed and deleted this worker mid-task: nobody to tell
                    continue
                future.set_exception(exc)
                sys.excepthook(*sys.exc_info())  # a bug: said, and the thread goes on
            except BaseException as exc:  # noqa: BLE001  (the Future carries it; the thread goes on)
                future.set_exception(exc)
                sys.excepthook(*sys.exc_info())
            else:
                future.set_result(result)

    def _forget(self, future: Future[Any]) -> None:
        with self._work_lock:
            self._work_pending.discard(future)

    @property
    def busy(self) -> bool:
        """Something submitted has not ended yet."""
        with self._work_lock:
            return bool(self._work_pending)

    @property
    def done(self) -> bool:
        """Work was submitted and all of it has ended."""
        with self._work_lock:
            return bool(self._work_threads) and not self._work_pending

    def flush(self, timeout_s: float = 60.0) -> bool:
        """Wait until everything submitted so far has ended (tests, benchmarks, shutdown); True when it has."""
        with self._work_lock:
            pending = list(self._work_pending)
        for future in pending:
            try:
                future.result(timeout=timeout_s)
            except TimeoutError:
                return False
            except BaseException:  # noqa: BLE001  (its owner reported it; waiting is all that is asked here)
                pass
        return True

    def shutdown(self, *, cancel_pending: bool = True) -> None:
        """Stop taking work; drop what has not started (``cancel_pending``); threads end after their task."""
        with self._work_lock:
            self._work_closed = True
            pending = list(self._work_pending)
            threads = list(self._work_threads)
        if cancel_pending:
            for future in pending:
                future.cancel()
        for _ in threads:
            self._work_queue.put(_STOP)


class Job(Worker):
    """One task on a :class:`Worker` thread of its own: ``start()`` runs ``_run`` there, and the thread ends
    with it. Subclasses declare their result signals and set ``thread_name``."""

    thread_name = "radscope-job"

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(type(self).thread_name, 1, parent)
        self.future: Future[Any] | None = None

    def start(self) -> Job:
        self.future = self.submit(self._run)
        self.shutdown(cancel_pending=False)  # one task: the thread ends with it
        return self

    @property
    def running(self) -> bool:
        """Started and not ended yet."""
        return self.future is not None and not self.future.done()

    def join(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the task to end; True when it has (or never started)."""
        return self.future is None or self.flush(timeout_s)

    def _run(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

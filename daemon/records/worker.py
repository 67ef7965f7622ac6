"""A one-thread executor that nobody waits for: the export and upload workers.

``ThreadPoolExecutor`` joins its threads when its ``with`` block is left (also when the task
using it is cancelled, which then blocks the event loop) and again at interpreter exit. An
upload stuck in the network for its full timeout would so hold the daemon's SIGTERM past its
10 s budget. The jobs run here are safe to abandon: the outbox counts an attempt before the
upload starts, batch files are written to a temp name and renamed, and the journal commits
every change in one SQLite transaction, so the next start redoes whatever was cut short.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class AbandonableWorker(Executor):
    """Runs jobs one at a time, in order, on a single daemon thread. ``shutdown`` lets the
    thread end after the job in flight and never waits for it."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._lock = threading.Lock()
        self._started = False
        self._closed = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit a job after shutdown")
            if not self._started:
                self._thread.start()
                self._started = True
            self._jobs.put((future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._jobs.put(None)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn, args, kwargs = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

"""The usage log's background writer: a bounded queue drained in batches by one daemon thread.

:meth:`BatchWriter.put` never blocks and never raises: an item that does not fit is dropped and
counted. ``write(batch) -> (written, error)`` does the inserting (the store's); anything it
raises is caught, counted as failed and kept in ``last_error``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["BatchWriter"]

_STOP, _WAKE = object(), object()  # queue markers: end the writer; write what you hold now


def describe(exc: BaseException) -> str:
    """The driver's error, without SQLAlchemy's statement and parameters (they may hold prompts)."""
    orig = getattr(exc, "orig", None) or exc
    return f"{type(orig).__name__}: {str(orig).strip()}"


class BatchWriter:
    """Queue items for ``write`` on one daemon thread (batches of <= ``batch_size``, waiting at
    most ``max_wait`` seconds to fill one). Counters: ``written``, ``failed``, ``dropped``."""

    def __init__(self, write: Callable[[list[Any]], tuple[int, str | None]], *, queue_size: int = 10000,
                 batch_size: int = 200, max_wait: float = 0.05, name: str = "router-usage-writer"):
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be >= 1")
        self._write = write
        self._batch_size, self._max_wait = batch_size, max_wait
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._enqueued = self._done = self.written = self.failed = self.dropped = 0
        self.last_error: str | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item: Any) -> None:
        """Queue ``item``; never blocks and never raises (a drop is counted)."""
        try:
            with self._lock:
                if not self._closed:
                    self._queue.put_nowait(item)
                    self._enqueued += 1
                    return
            self._drop("store is closed")
        except queue.Full:
            self._drop(f"queue full ({self._queue.maxsize} records)")
        except Exception as exc:  # pragma: no cover - defensive
            self._drop(describe(exc))

    def _drop(self, why: str) -> None:
        with self._lock:
            self.dropped += 1
            self.last_error = f"record dropped: {why}"

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every item queued before this call is written (or failed); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._enqueued
            if self._done >= target:
                return True
        try:
            self._queue.put(_WAKE, timeout=max(timeout, 0.0))  # stop the writer lingering
        except queue.Full:
            return False
        with self._cond:
            while self._done < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Write what is queued and stop the thread; False when it was already closed."""
        with self._lock:
            if self._closed:
                return False
            self._closed = True
        try:
            self._queue.put(_STOP, timeout=timeout)
            self._thread.join(timeout)
        except queue.Full:
            self.last_error = "close: the writer did not drain the queue in time"
        return True

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is _STOP:
                break
            if item is _WAKE:
                continue
            batch, deadline = [item], time.monotonic() + self._max_wait
            while len(batch) < self._batch_size:
                remaining = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _WAKE or item is _STOP:
                    stop = item is _STOP
                    break
                batch.append(item)
            written, error = 0, None
            try:
                written, error = self._write(batch)
            except Exception as exc:  # the writer must survive anything
                error = describe(exc)
            with self._cond:
                self.written += written
                self.failed += len(batch) - written
                self._done += len(batch)
                if error is not None:
                    self.last_error = error
                self._cond.notify_all()

"""The usage log's background writer: a bounded queue drained in batches by one daemon thread,
which never loses a row silently.

:meth:`BatchWriter.put` never blocks and never raises: an item that does not fit is dropped and
counted. Each batch is turned into rows (``prepare``; an item it refuses is counted ``failed``)
and inserted (``insert(rows) -> rows newly inserted``, idempotent on the row key). An insert that
fails is retried with exponential backoff; when it still fails the rows are **journalled**
(:class:`~router.serving.usage.journal.Journal`, when one is configured) and the writer stays in
"journalling" mode: new batches go straight to the journal, and the journal is replayed into the
database every ``probe`` seconds (doubling up to ``max_probe``) until a replay succeeds. Rows that
can be neither inserted nor journalled are counted ``lost``. Every change of state is logged
(``router.serving.usage`` logger, warning level) with its cause; :meth:`BatchWriter.health`
gives the reasons ``/health`` reports.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from .journal import Journal

__all__ = ["BatchWriter", "describe"]

log = logging.getLogger("router.serving.usage")

_STOP, _WAKE = object(), object()  # queue markers: end the writer; write what you hold now
_LOSS_MEMORY_S = 600.0  # /health stays degraded this long after a row was lost


def describe(exc: BaseException) -> str:
    """The driver's error, without SQLAlchemy's statement and parameters (they may hold prompts)."""
    orig = getattr(exc, "orig", None) or exc
    return f"{type(orig).__name__}: {str(orig).strip()}"


class BatchWriter:
    """Queue items and write them on one daemon thread (batches of <= ``batch_size``, waiting at
    most ``max_wait`` seconds to fill one); see the module docstring.

    Counters: ``written`` (inserted), ``duplicates`` (already in the database: a replay),
    ``failed`` (refused by ``prepare``), ``dropped`` (queue full or closed), ``journalled`` (rows
    spilled to the journal), ``replayed`` (journal rows now in the database), ``lost`` (neither)."""

    def __init__(self, prepare: Callable[[Any], dict[str, Any]], insert: Callable[[list[dict[str, Any]]], int], *,
                 check: Callable[[], None] | None = None, journal: Journal | None = None,
                 queue_size: int = 10000, batch_size: int = 200, max_wait: float = 0.05,
                 retries: int = 3, backoff: float = 0.1, probe: float = 0.5, max_probe: float = 5.0,
                 name: str = "router-usage-writer"):
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be >= 1")
        if retries < 0 or backoff < 0 or probe <= 0 or max_probe < probe:
            raise ValueError("retries and backoff must be >= 0, 0 < probe <= max_probe")
        self._prepare, self._insert, self._check, self.journal = prepare, insert, check, journal
        self._batch_size, self._max_wait = batch_size, max_wait
        self._retries, self._backoff, self._probe0, self._max_probe = retries, backoff, probe, max_probe
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._enqueued = self._done = 0
        self.written = self.duplicates = self.failed = self.dropped = 0
        self.journalled = self.replayed = self.lost = 0
        self.last_error: str | None = None
        self.store_error: str | None = None  # set while the database is failing
        self.retrying: str | None = None  # set while a failed insert is being retried
        self._last_loss = -1e18
        self._probe = probe
        self._next_replay = time.monotonic() if journal is not None and journal.pending() else None
        self._closed = self._closing = False
        self._closing_event = threading.Event()  # wakes a retry's backoff when close() is called
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- the caller's side -----------------------------------------------------------------
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
            first = self.dropped == 0
            self.dropped += 1
            self.last_error = f"record dropped: {why}"
            self._last_loss = time.monotonic()
        if first:
            log.warning("usage log: a record was dropped (%s); further drops are counted in /health", why)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every item queued before this call is settled (written, journalled or
        counted lost); False on timeout."""
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

    def close(self, timeout: float = 30.0) -> bool:
        """Write what is queued (no more retries: what the database refuses now is journalled),
        try a last replay, stop the thread; False when it was already closed. Rows still queued
        when ``timeout`` runs out are counted lost, with a warning."""
        with self._lock:
            if self._closed:
                return False
            self._closed = self._closing = True
        self._closing_event.set()
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            with self._lock:
                left = self._enqueued - self._done
                self.lost += left
            self._lose(left, f"the writer did not finish within {timeout:g} s of close (still queued at exit)")
        elif self.journal is not None:
            self.journal.close()
        return True

    def health(self) -> list[str]:
        """Why the log is degraded now (empty when it is fine)."""
        reasons = []
        with self._lock:
            if self.store_error is not None:
                where = (f"; rows are journalled to {self.journal.path}" if self.journal is not None
                         else "; no journal is configured, rows are lost")
                reasons.append(f"usage log: the database is failing ({self.store_error}){where}")
            elif self.retrying is not None:
                reasons.append(f"usage log: a database write failed and is being retried ({self.retrying})")
            elif self.journal is not None and self._next_replay is not None:
                reasons.append(f"usage log: journalled rows wait for replay ({self.journal.path})")
            if time.monotonic() - self._last_loss < _LOSS_MEMORY_S:
                reasons.append(f"usage log: {self.lost + self.dropped} record(s) lost since start "
                               f"(last: {self.last_error})")
        return reasons

    # -- the writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        stop = False
        while not stop:
            wait = None if self._next_replay is None else max(0.0, self._next_replay - time.monotonic())
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = _WAKE
            batch: list[Any] = []
            if item is _STOP:
                stop = True
            elif item is not _WAKE:
                batch, stop = self._collect(item)
            if self._next_replay is not None and (stop or time.monotonic() >= self._next_replay):
                self._replay()
            if batch:
                self._handle(batch)
        if self.journal is not None:  # last chance: leave nothing journalled that could go in now
            if self._next_replay is not None:
                self._replay()

    def _collect(self, first: Any) -> tuple[list[Any], bool]:
        batch, deadline = [first], time.monotonic() + self._max_wait
        while len(batch) < self._batch_size:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _WAKE or item is _STOP:
                return batch, item is _STOP
            batch.append(item)
        return batch, False

    def _settle(self, n: int, **counts: int) -> None:
        with self._cond:
            for k, v in counts.items():
                setattr(self, k, getattr(self, k) + v)
            self._done += n
            self._cond.notify_all()

    def _handle(self, batch: list[Any]) -> None:
        rows, refused = [], 0
        for item in batch:
            try:
                rows.append(self._prepare(item))
            except Exception as exc:
                refused += 1
                self.last_error = (f"invalid usage record ({type(item).__name__}, request_id="
                                   f"{getattr(item, 'request_id', None)!r}): {describe(exc)}")
                log.warning("usage log: %s", self.last_error)
        if not rows:
            self._settle(len(batch), failed=refused)
            return
        if self._next_replay is not None:  # the database is down: straight to the journal
            self._settle(len(batch), failed=refused, **self._spill(rows))
            return
        error = None
        for attempt in range(self._retries + 1):
            if attempt:
                if self._closing:  # closing: no time to wait, the journal takes it
                    break
                self._closing_event.wait(min(self._backoff * 2 ** (attempt - 1), 2.0))
                if self._closing:
                    break
            try:
                if self._check is not None:
                    self._check()
                new = self._insert(rows)
            except Exception as exc:
                error = describe(exc)
                with self._lock:
                    self.retrying = error
                continue
            with self._lock:
                self.retrying = None
            self._settle(len(batch), failed=refused, written=new, duplicates=len(rows) - new)
            return
        with self._lock:
            self.retrying = None
        self._failing(error or "unknown error")
        self._settle(len(batch), failed=refused, **self._spill(rows))

    def _failing(self, error: str) -> None:
        with self._lock:
            was = self.store_error
            self.store_error = self.last_error = f"writes failing: {error}"
            self._probe = self._probe0
            self._next_replay = time.monotonic() + self._probe
        if was is None:
            log.warning("usage log: database writes are failing after %d attempts (%s); %s", self._retries + 1,
                        error, f"journalling rows to {self.journal.path}" if self.journal is not None
                        else "no --usage-journal: rows are lost until it recovers")

    def _spill(self, rows: list[dict[str, Any]]) -> dict[str, int]:
        if self.journal is None:
            self._lose(len(rows), self.store_error or "the database is failing")
            return {"lost": len(rows)}
        try:
            self.journal.append(rows)
        except Exception as exc:
            self._lose(len(rows), f"{self.store_error}; and the journal failed: {describe(exc)}")
            return {"lost": len(rows)}
        with self._lock:
            if self._next_replay is None:
                self._next_replay = time.monotonic() + self._probe
        return {"journalled": len(rows)}

    def _lose(self, n: int, why: str) -> None:
        with self._lock:
            self.last_error = f"{n} usage record(s) lost: {why}"
            self._last_loss = time.monotonic()
        log.warning("usage log: %s", self.last_error)

    def _replay(self) -> None:
        try:
            if self._check is not None:
                self._check()
            for path, rows, bad in list(self.journal.pending_rows()) if self.journal else []:
                new = 0
                for i in range(0, len(rows), 500):
                    new += self._insert(rows[i: i + 500])
                self.journal.clear(path)
                self._settle(0, written=new, duplicates=len(rows) - new, replayed=len(rows), lost=bad)
                if bad:
                    self._lose(bad, f"{bad} unreadable line(s) in the journal {path}")
                log.warning("usage log: replayed %d journalled row(s) from %s (%d already in the database)",
                            len(rows), path, len(rows) - new)
        except Exception as exc:
            with self._lock:
                self._probe = min(self._probe * 2, self._max_probe)
                self._next_replay = time.monotonic() + self._probe
                if self.store_error is None:
                    self.store_error = self.last_error = f"writes failing: {describe(exc)}"
            return
        with self._lock:
            was = self.store_error
            self.store_error, self._next_replay, self._probe = None, None, self._probe0
        if was is not None:
            log.warning("usage log: the database is writable again (was: %s)", was)

"""The usage log: one row per routed request, user feedback, and savings statistics.

::

    with UsageStore("sqlite:///var/router_usage.db") as store:
        store.log(record)                       # never blocks, never raises
        store.stats(catalog)["savings_pct"]     # after store.flush() for up-to-date numbers

Writes go through a bounded queue to one background thread that inserts in batches, so logging
costs a user request microseconds and a slow or broken database can never fail it. A failed
insert is retried with backoff; when the database stays unavailable (locked, full, its file
deleted) the rows go to the local ``journal`` (a folder; bounded, fsync'd) and are replayed, idempotently
on ``request_id``, when it returns (or by the next process to open the same journal folder);
rows that can be neither inserted nor journalled are counted ``lost``; every change of state is a
logged warning, and :meth:`UsageStore.health` says why the log is degraded (see
:mod:`~router.serving.usage.writer`). Reads, feedback and migrations are synchronous; feedback
writes are retried with backoff and raise :class:`~router.errors.UsageLogError` when they still
fail (nothing stored).

Any SQLAlchemy URL works; SQLite (WAL mode, busy timeout) and PostgreSQL are tested. The schema is
versioned by :mod:`router.serving.usage.migrations`. The record type lives in
:mod:`~router.serving.usage.record`, statistics in :mod:`~router.serving.usage.stats`; their
public names are re-exported here.

Feedback rows carry an ``origin`` (see :data:`~router.serving.usage.record.ORIGINS`). A row scores
either a logged request (``request_id``) or, for imported outcomes, a prompt and model of its own
(``request_id`` is then ``import:<prompt_id>:<model>``); :meth:`UsageStore.add_outcomes` writes a
batch of those in one transaction, all or nothing.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ...catalog.model_catalog import ModelCatalog
from ...errors import ArtifactError, InvalidRequestError, UsageLogError
from . import migrations as _migrations
from .migrations import MIGRATIONS, Migration
from .record import ORIGINS, UsageRecord, hash_prompt
from . import reads
from .rows import FIELDS, from_row, implicit_feedback, to_row
from .stats import plot_stats, usage_stats
from .engine import create_engine, file_identity, sqlite_file
from .journal import Journal
from .writer import BatchWriter
from .writer import describe as _describe

__all__ = ["UsageRecord", "UsageStore", "Migration", "MIGRATIONS", "hash_prompt", "plot_stats"]


log = logging.getLogger("router.serving.usage")
_T = TypeVar("_T")
_JUDGE_META = {"judge_model", "rubric_version", "rubric_sha256"}  # what a judge grade must say about itself


class UsageStore:
    """A usage log in any SQLAlchemy database; see the module docstring."""

    def __init__(self, url: str = "sqlite:///router_usage.db", *, store_prompts: bool = False,
                 store_responses: bool = False,
                 queue_size: int = 10000, batch_size: int = 200, max_wait: float = 0.05,
                 busy_timeout_ms: int = 5000, journal: str | Path | None = None,
                 journal_max_bytes: int = 256 * 1024 * 1024, retries: int = 3, backoff: float = 0.1,
                 probe: float = 0.5, max_probe: float = 5.0):
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be >= 1")
        self.store_prompts = store_prompts
        self.store_responses = store_responses
        self._url_text = sa.make_url(url).render_as_string(hide_password=True)
        try:
            self._engine = create_engine(url, busy_timeout_ms)
        except ValueError:
            raise
        except Exception as exc:
            raise ArtifactError(f"cannot open usage database {self._url_text}: {_describe(exc)}") from exc
        try:
            self._migrate()
        except BaseException:
            self._engine.dispose()
            raise
        self._db_file = sqlite_file(url)
        self._db_inode = file_identity(self._db_file)
        jr = None
        if journal is not None:
            try:
                jr = Journal(journal, journal_max_bytes)
            except OSError as exc:
                self._engine.dispose()
                raise ArtifactError(f"cannot open the usage journal in {journal}: {exc}") from exc
        # through lambdas, so a test can wrap _insert_rows on the instance
        self._writer = BatchWriter(lambda rec: self._to_row(rec), lambda rows: self._insert_rows(rows),
                                   check=lambda: self._check_file(), journal=jr, queue_size=queue_size,
                                   batch_size=batch_size, max_wait=max_wait, retries=retries, backoff=backoff,
                                   probe=probe, max_probe=max_probe)
        atexit.register(self.close)

    def _check_file(self) -> None:
        """Raise when the SQLite file was deleted or replaced under the store (SQLite would go on
        writing to the unlinked file, and every row would vanish with it)."""
        if self._db_file is None:
            return
        if file_identity(self._db_file) != self._db_inode:
            raise ArtifactError(f"the usage database file {self._db_file} was deleted or replaced "
                                "(restart the gateway to create a new one)")

    def probe_write(self) -> None:
        """Check the log can be written now (a write rolled back); :class:`ArtifactError` naming
        the cause. ``router serve`` calls it before it starts."""
        try:
            self._check_file()
            with self._engine.connect() as conn:
                conn.execution_options(sqlite_begin="IMMEDIATE")
                tx = conn.begin()
                try:
                    conn.execute(self._requests.delete().where(self._requests.c.request_id == "router:write-probe"))
                    conn.execute(sa.text("CREATE TABLE router_write_probe (x INTEGER)"))
                finally:
                    tx.rollback()
        except ArtifactError:
            raise
        except Exception as exc:
            raise ArtifactError(f"the usage log {self._url_text} is not writable: {_describe(exc)}") from exc

    # -- migrations ------------------------------------------------------------------------
    def _migrate(self) -> None:
        try:
            with self._engine.connect() as conn:
                conn.execution_options(sqlite_begin="IMMEDIATE")  # take SQLite's write lock first
                with conn.begin():
                    _migrations.migrate(conn, self._url_text, _migrations.MIGRATIONS)
                    md = sa.MetaData()  # the live layout is whatever the migrations made
                    self._requests = sa.Table("requests", md, autoload_with=conn)
                    self._feedback = sa.Table("feedback", md, autoload_with=conn)
            self._record_cols = [self._requests.c[name] for name in FIELDS]
        except ArtifactError:
            raise
        except Exception as exc:
            raise ArtifactError(f"cannot open usage database {self._url_text}: {exc}") from exc

    # -- writes ----------------------------------------------------------------------------
    def log(self, record: UsageRecord) -> None:
        """Queue ``record`` for the writer; never blocks and never raises (a drop is counted)."""
        self._writer.put(record)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every record queued before this call is written (or failed); False on timeout."""
        return self._writer.flush(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, stop the writer and release the database (idempotent)."""
        if self._writer.close(timeout):
            atexit.unregister(self.close)
            self._engine.dispose()

    def __enter__(self) -> UsageStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self._url_text

    @property
    def failed_writes(self) -> int:
        """Records refused as invalid (they are not in the database)."""
        return self._writer.failed

    @property
    def lost(self) -> int:
        """Records neither inserted nor journalled (the database and the journal both failed)."""
        return self._writer.lost

    @property
    def journalled(self) -> int:
        """Records spilled to the journal while the database failed."""
        return self._writer.journalled

    @property
    def replayed(self) -> int:
        """Journalled records now in the database."""
        return self._writer.replayed

    @property
    def duplicates(self) -> int:
        """Records not inserted because their ``request_id`` was already in the log."""
        return self._writer.duplicates

    @property
    def journal_path(self) -> Path | None:
        """This process's journal file, or None without a journal."""
        return None if self._writer.journal is None else self._writer.journal.path

    def health(self) -> list[str]:
        """Why the log is degraded now (the database failing, rows journalled or lost); empty
        when all is well."""
        return self._writer.health()

    def counters(self) -> dict[str, Any]:
        """The writer's counters, for ``/health`` and ``/v1/stats``."""
        w = self._writer
        return {"written": w.written, "journalled": w.journalled, "replayed": w.replayed, "lost": w.lost,
                "dropped": w.dropped, "failed_writes": w.failed, "duplicates": w.duplicates}

    @property
    def dropped(self) -> int:
        """Records never queued: the queue was full or the store closed."""
        return self._writer.dropped

    @property
    def written(self) -> int:
        """Records this store has inserted since it was opened."""
        return self._writer.written

    @property
    def last_error(self) -> str | None:
        """The last drop or write failure (no statement parameters: they may hold prompts)."""
        return self._writer.last_error

    def _insert_rows(self, rows: list[dict[str, Any]]) -> int:
        """Insert the rows not already in the table, in one transaction; returns how many were
        new. Idempotent on ``request_id``: a journal replayed twice adds nothing the second time."""
        by_id: dict[str, dict[str, Any]] = {}
        for r in rows:
            by_id.setdefault(r["request_id"], r)  # the first of each id
        with self._engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")  # SQLite: wait for the write lock up front
            with conn.begin():
                present = {x for (x,) in conn.execute(
                    sa.select(self._requests.c.request_id).where(self._requests.c.request_id.in_(list(by_id))))}
                new = [r for k, r in by_id.items() if k not in present]
                if new:
                    conn.execute(self._requests.insert(), new)
                    fb = implicit_feedback(new)
                    if fb:
                        conn.execute(self._feedback.insert(), fb)
        return len(new)

    def _to_row(self, rec: UsageRecord) -> dict[str, Any]:
        return to_row(rec, store_prompts=self.store_prompts, store_responses=self.store_responses)

    # -- reads -----------------------------------------------------------------------------
    def get(self, request_id: str) -> UsageRecord | None:
        """The record of ``request_id`` as written (queued records appear after :meth:`flush`)."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(*self._record_cols).where(self._requests.c.request_id == request_id)).first()
        return None if row is None else from_row(row)

    def records(self, since: float | None = None, limit: int | None = None) -> list[UsageRecord]:
        """Written records with ``created_at >= since``, oldest first, at most ``limit``."""
        q = sa.select(*self._record_cols).order_by(self._requests.c.created_at, self._requests.c.request_id)
        if since is not None:
            q = q.where(self._requests.c.created_at >= since)
        if limit is not None:
            q = q.limit(limit)
        with self._engine.connect() as conn:
            return [from_row(r) for r in conn.execute(q)]

    def record_chunks(self, since: float | None = None, until: float | None = None, *, chunk_size: int = 5000,
                      answered: bool = False) -> Iterator[list[UsageRecord]]:
        """Written records, oldest first, in chunks (see :func:`.reads.record_chunks`)."""
        return reads.record_chunks(self._engine, self._requests, self._record_cols, since, until,
                                   chunk_size=chunk_size, answered=answered)

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(self._requests)).scalar() or 0)

    # -- feedback --------------------------------------------------------------------------
    def add_feedback(self, request_id: str, score: float, comment: str | None = None, *, origin: str = "human",
                     model: str | None = None, meta: Mapping[str, Any] | None = None) -> int:
        """Store a score in [0, 1] for a logged request; returns the feedback id.

        ``origin``: one of :data:`~router.serving.usage.record.ORIGINS` (the library is trusted;
        the gateway refuses ``judge`` from clients; a ``judge`` grade must carry ``judge_model``,
        ``rubric_version`` and ``rubric_sha256`` in ``meta``, as ``router judge`` writes them).
        ``model``: the model the score is about when it is not the one that answered (an
        escalation's implicit 0 for the first model).
        Raises :class:`InvalidRequestError` for a score outside [0, 1], an unknown origin or an
        unknown request id."""
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score) \
                or not 0.0 <= score <= 1.0:
            raise InvalidRequestError(f"feedback score must be a number in [0, 1], got {score!r}")
        if origin not in ORIGINS:
            raise InvalidRequestError(f"feedback origin must be one of {list(ORIGINS)}, got {origin!r}")
        if origin == "judge" and not _JUDGE_META <= set(meta or ()):
            raise InvalidRequestError(f"origin 'judge' feedback must carry its provenance in meta "
                                      f"({sorted(_JUDGE_META)}): it comes from `router judge`")
        if self._retrying(lambda: self.get(request_id), "feedback") is None:
            self.flush()  # the request may still be waiting in the queue
            if self._retrying(lambda: self.get(request_id), "feedback") is None:
                if self.health():  # it may be journalled, waiting for the database to return
                    raise UsageLogError(f"the usage log is degraded ({'; '.join(self.health())}): request "
                                        f"{request_id!r} may be journalled; feedback not stored, retry later")
                raise InvalidRequestError(f"unknown request_id {request_id!r}: it is not in the usage log")

        def insert() -> int:
            with self._engine.begin() as conn:
                res = conn.execute(self._feedback.insert().values(
                    request_id=request_id, created_at=time.time(), score=float(score), comment=comment,
                    origin=origin, model=model, meta=json.dumps(dict(meta)) if meta else None))
                return int(res.inserted_primary_key[0])

        return self._retrying(insert, "feedback")

    def _retrying(self, fn: Callable[[], _T], what: str, attempts: int = 4) -> _T:
        """``fn()`` retried with backoff on database errors; :class:`UsageLogError` naming the
        cause when it still fails (nothing was stored)."""
        for i in range(attempts):
            try:
                self._check_file()
                return fn()
            except (sa.exc.OperationalError, sa.exc.InterfaceError, ArtifactError) as exc:
                if i == attempts - 1:
                    cause = _describe(exc)
                    log.warning("usage log: %s write failed after %d attempts: %s", what, attempts, cause)
                    raise UsageLogError(f"the usage log cannot be written now ({cause}); the {what} was not "
                                        "stored, retry later", cause=cause) from None
                time.sleep(0.1 * 2 ** i)
        raise AssertionError("unreachable")

    def known_requests(self, request_ids: Sequence[str]) -> set[str]:
        """The subset of ``request_ids`` that are in the log."""
        found: set[str] = set()
        ids = list(dict.fromkeys(request_ids))
        with self._engine.connect() as conn:
            for i in range(0, len(ids), 500):
                q = sa.select(self._requests.c.request_id).where(self._requests.c.request_id.in_(ids[i: i + 500]))
                found.update(r[0] for r in conn.execute(q))
        return found

    def add_feedback_rows(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert validated feedback rows (dicts of feedback columns) in **one** transaction:
        all are stored or none. Full outcomes get ``request_id = import:<prompt_id>:<model>``
        and the prompt's hash. Returns the number stored."""
        now = time.time()
        out = []
        for r in rows:
            row = dict(r)
            row.setdefault("created_at", now)
            row.setdefault("origin", "import")
            if row.get("prompt") is not None:
                row.setdefault("prompt_hash", hash_prompt(row["prompt"]))
                row.setdefault("request_id", f"import:{row.get('prompt_id')}:{row.get('model')}")
            if isinstance(row.get("meta"), Mapping):
                row["meta"] = json.dumps(row["meta"])
            out.append(row)
        if not out:
            return 0
        cols = set(self._feedback.c.keys())
        bad = sorted({k for row in out for k in row} - cols)
        if bad:
            raise InvalidRequestError(f"unknown feedback column(s) {bad}")
        keys = sorted({k for row in out for k in row})

        def insert() -> int:
            with self._engine.begin() as conn:
                conn.execute(self._feedback.insert(), [{k: row.get(k) for k in keys} for row in out])
            return len(out)

        return self._retrying(insert, "feedback import")

    def feedback(self, request_id: str | None = None) -> list[dict[str, Any]]:
        """Feedback rows (every column of the feedback table) in insertion order."""
        q = sa.select(self._feedback).order_by(self._feedback.c.id)
        if request_id is not None:
            q = q.where(self._feedback.c.request_id == request_id)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def training_rows(self, since: float | None = None, chunk_size: int = 5000) -> Iterator[list[dict[str, Any]]]:
        """Feedback joined with its request, oldest first, in chunks (see :func:`.reads.training_rows`)."""
        return reads.training_rows(self._engine, self._feedback, self._requests, since, chunk_size)

    # -- statistics ------------------------------------------------------------------------
    def stats(self, catalog: ModelCatalog, baseline_model: str = "gpt-4o",
              since: float | None = None) -> dict[str, Any]:
        """Totals, savings of the answered requests against ``baseline_model`` (their tokens at
        the baseline's own prices), model and task breakdowns, latency percentiles, rejections
        listed apart, what is not traffic; see :mod:`~router.serving.usage.stats`. Plus this
        store's writer counters."""
        out = usage_stats(self._engine, self._requests, catalog, baseline_model, since, self._feedback)
        out.update(self.counters())
        return out

"""The usage log: one row per routed request, user feedback, and savings statistics.

::

    with UsageStore("sqlite:///var/router_usage.db") as store:
        store.log(record)                       # never blocks, never raises
        store.stats(catalog)["savings_pct"]     # after store.flush() for up-to-date numbers

Writes go through a bounded queue to one background thread that inserts in batches, so logging
costs a user request microseconds and a slow or broken database can never fail it: a record that
does not fit in the queue, or whose insert fails, is dropped and counted (``dropped``,
``failed_writes``, ``last_error``). Reads, feedback and migrations are synchronous.

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
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ...catalog.model_catalog import ModelCatalog
from ...errors import ArtifactError, InvalidRequestError
from . import migrations as _migrations
from .migrations import MIGRATIONS, Migration
from .record import ORIGINS, UsageRecord, hash_prompt
from .stats import plot_stats, usage_stats
from .writer import BatchWriter
from .writer import describe as _describe

__all__ = ["UsageRecord", "UsageStore", "Migration", "MIGRATIONS", "hash_prompt", "plot_stats"]


_FIELDS = tuple(f.name for f in fields(UsageRecord))
_BOOL_COLS, _FLOAT_COLS = ("escalated", "stream"), ("created_at", "cost_usd", "latency_ms")
_OPT_FLOAT_COLS = ("predicted_quality", "propensity", "target_quality")
_JUDGE_META = {"judge_model", "rubric_version", "rubric_sha256"}  # what a judge grade must say about itself


class UsageStore:
    """A usage log in any SQLAlchemy database; see the module docstring."""

    def __init__(self, url: str = "sqlite:///router_usage.db", *, store_prompts: bool = False,
                 store_responses: bool = False,
                 queue_size: int = 10000, batch_size: int = 200, max_wait: float = 0.05,
                 busy_timeout_ms: int = 5000):
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be >= 1")
        self.store_prompts = store_prompts
        self.store_responses = store_responses
        self._url_text = sa.make_url(url).render_as_string(hide_password=True)
        self._engine = self._create_engine(url, busy_timeout_ms)
        try:
            self._migrate()
        except BaseException:
            self._engine.dispose()
            raise
        # through a lambda, so a test can wrap _write_batch on the instance
        self._writer = BatchWriter(lambda batch: self._write_batch(batch), queue_size=queue_size,
                                   batch_size=batch_size, max_wait=max_wait)
        atexit.register(self.close)

    # -- engine and migrations -------------------------------------------------------------
    @staticmethod
    def _create_engine(url: str, busy_timeout_ms: int) -> Engine:
        u = sa.make_url(url)
        if u.get_backend_name() != "sqlite":
            return sa.create_engine(u, pool_pre_ping=True)
        if u.database in (None, "", ":memory:") or "mode=memory" in u.database:
            raise ValueError("the usage log needs a SQLite file (an in-memory database is private to "
                             "one connection, and the writer thread uses its own)")
        if not u.database.startswith("file:"):
            Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(u, connect_args={"timeout": busy_timeout_ms / 1000})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves: transactional DDL
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode, no fsync per commit
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN " + conn.get_execution_options().get("sqlite_begin", ""))

        return engine

    def _migrate(self) -> None:
        try:
            with self._engine.connect() as conn:
                conn.execution_options(sqlite_begin="IMMEDIATE")  # take SQLite's write lock first
                with conn.begin():
                    _migrations.migrate(conn, self._url_text, _migrations.MIGRATIONS)
                    md = sa.MetaData()  # the live layout is whatever the migrations made
                    self._requests = sa.Table("requests", md, autoload_with=conn)
                    self._feedback = sa.Table("feedback", md, autoload_with=conn)
            self._record_cols = [self._requests.c[name] for name in _FIELDS]
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

    def close(self, timeout: float = 10.0) -> None:
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
        """Records whose insert failed (they are not in the database)."""
        return self._writer.failed

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

    def _write_batch(self, batch: list[Any]) -> tuple[int, str | None]:
        rows, error = [], None
        for rec in batch:
            try:
                rows.append(self._to_row(rec))
            except Exception as exc:
                error = (f"invalid usage record ({type(rec).__name__}, request_id="
                         f"{getattr(rec, 'request_id', None)!r}): {_describe(exc)}")
        if not rows:
            return 0, error
        try:
            with self._engine.begin() as conn:
                conn.execute(self._requests.insert(), rows)
                self._insert_implicit(conn, rows)
            return len(rows), error
        except sa.exc.IntegrityError:  # e.g. a duplicate request_id: insert one by one, lose only it
            written = 0
            for row in rows:
                try:
                    with self._engine.begin() as conn:
                        conn.execute(self._requests.insert(), [row])
                        self._insert_implicit(conn, [row])
                    written += 1
                except Exception as exc:
                    error = f"insert of request {row['request_id']!r} failed: {_describe(exc)}"
            return written, error
        except Exception as exc:
            return 0, f"insert of {len(rows)} usage records failed: {_describe(exc)}"

    def _insert_implicit(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """An escalation that fired is implicit evidence that the answer it replaced was weak:
        one ``origin=implicit`` score 0 for each attempt the chain marks ``escalated``."""
        fb = [{"request_id": row["request_id"], "created_at": row["created_at"], "score": 0.0,
               "comment": "escalation fired", "origin": "implicit", "model": e.get("model")}
              for row in rows if row["escalated"]
              for e in json.loads(row["chain"]) if isinstance(e, dict) and e.get("status") == "escalated"]
        if fb:
            conn.execute(self._feedback.insert(), fb)

    def _to_row(self, rec: UsageRecord) -> dict[str, Any]:
        row = {name: getattr(rec, name) for name in _FIELDS}
        if not row["prompt_hash"] and rec.prompt is not None:
            row["prompt_hash"] = hash_prompt(rec.prompt)
        if not self.store_prompts:
            row["prompt"] = row["classifier_text"] = None
        if not self.store_responses:
            row["answer"] = None
        row["chain"] = json.dumps(list(rec.chain), default=str)
        row["candidates"] = json.dumps(list(rec.candidates), default=str) if rec.candidates else None
        for k in _BOOL_COLS:
            row[k] = bool(row[k])
        return row

    # -- reads -----------------------------------------------------------------------------
    @staticmethod
    def _from_row(row: Any) -> UsageRecord:
        d = dict(row._mapping)
        d["chain"] = json.loads(d["chain"] or "[]")
        d["candidates"] = json.loads(d["candidates"] or "[]")
        for k in _BOOL_COLS:
            d[k] = bool(d[k])
        d["explored"] = None if d["explored"] is None else bool(d["explored"])
        for k in _FLOAT_COLS + _OPT_FLOAT_COLS:
            d[k] = None if d[k] is None else float(d[k])
        return UsageRecord(**d)

    def get(self, request_id: str) -> UsageRecord | None:
        """The record of ``request_id`` as written (queued records appear after :meth:`flush`)."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(*self._record_cols).where(self._requests.c.request_id == request_id)).first()
        return None if row is None else self._from_row(row)

    def records(self, since: float | None = None, limit: int | None = None) -> list[UsageRecord]:
        """Written records with ``created_at >= since``, oldest first, at most ``limit``."""
        q = sa.select(*self._record_cols).order_by(self._requests.c.created_at, self._requests.c.request_id)
        if since is not None:
            q = q.where(self._requests.c.created_at >= since)
        if limit is not None:
            q = q.limit(limit)
        with self._engine.connect() as conn:
            return [self._from_row(r) for r in conn.execute(q)]

    def record_chunks(self, since: float | None = None, until: float | None = None, *, chunk_size: int = 5000,
                      answered: bool = False):
        """Written records with ``since <= created_at < until``, oldest first, yielded in lists of
        at most ``chunk_size`` (memory stays bounded by it). ``answered``: only rows whose answer
        and text (prompt or classifier text) were stored (what a judge can grade)."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        r = self._requests
        q = sa.select(*self._record_cols).order_by(r.c.created_at, r.c.request_id)
        if since is not None:
            q = q.where(r.c.created_at >= since)
        if until is not None:
            q = q.where(r.c.created_at < until)
        if answered:
            q = q.where(r.c.answer.is_not(None), sa.or_(r.c.prompt.is_not(None), r.c.classifier_text.is_not(None)))
        with self._engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(q)
            while part := result.fetchmany(chunk_size):
                yield [self._from_row(x) for x in part]

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
        if self.get(request_id) is None:
            self.flush()  # the request may still be waiting in the queue
            if self.get(request_id) is None:
                raise InvalidRequestError(f"unknown request_id {request_id!r}: it is not in the usage log")
        with self._engine.begin() as conn:
            res = conn.execute(self._feedback.insert().values(
                request_id=request_id, created_at=time.time(), score=float(score), comment=comment,
                origin=origin, model=model, meta=json.dumps(dict(meta)) if meta else None))
            return int(res.inserted_primary_key[0])

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
        with self._engine.begin() as conn:
            conn.execute(self._feedback.insert(), [{k: row.get(k) for k in keys} for row in out])
        return len(out)

    def feedback(self, request_id: str | None = None) -> list[dict[str, Any]]:
        """Feedback rows (every column of the feedback table) in insertion order."""
        q = sa.select(self._feedback).order_by(self._feedback.c.id)
        if request_id is not None:
            q = q.where(self._feedback.c.request_id == request_id)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def training_rows(self, since: float | None = None, chunk_size: int = 5000):
        """Feedback joined with its request (when it scores a logged one), oldest first, yielded
        in chunks of dicts: feedback columns as they are, the request's columns prefixed ``req_``
        (``None`` for imported outcomes). Memory stays bounded by ``chunk_size``."""
        f, r = self._feedback, self._requests
        req_cols = [r.c[k].label(f"req_{k}") for k in (
            "request_id", "created_at", "task", "model", "prompt", "prompt_hash", "classifier_text",
            "routed_model", "propensity", "explored", "candidates", "cost_usd", "prompt_tokens",
            "completion_tokens", "chain", "escalated", "status", "router_version", "answer")]
        q = sa.select(f, *req_cols).select_from(f.outerjoin(r, f.c.request_id == r.c.request_id))
        if since is not None:
            q = q.where(f.c.created_at >= since)
        q = q.order_by(f.c.id)
        with self._engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(q)
            while True:
                part = result.fetchmany(chunk_size)
                if not part:
                    break
                yield [dict(x._mapping) for x in part]

    # -- statistics ------------------------------------------------------------------------
    def stats(self, catalog: ModelCatalog, baseline_model: str = "gpt-4o",
              since: float | None = None) -> dict[str, Any]:
        """Totals, savings against ``baseline_model`` (each request's tokens at the baseline's
        own input/output prices), model and task breakdowns, latency percentiles."""
        out = usage_stats(self._engine, self._requests, catalog, baseline_model, since)
        out.update({"failed_writes": self.failed_writes, "dropped": self.dropped})
        return out

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
versioned: :data:`MIGRATIONS` is an ordered tuple, and opening a store applies the pending ones in
one locked transaction; the tables are then reflected from the database, so reads and writes use
exactly the migrated layout. To change it, append ``Migration(2, "...", upgrade)`` (e.g.
``conn.execute(text("ALTER TABLE requests ADD COLUMN region VARCHAR(64)"))``), add the field to
:class:`UsageRecord`, and never edit an existing migration.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import math
import queue
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ...catalog.model_catalog import ModelCatalog
from ...errors import ArtifactError, InvalidRequestError

__all__ = ["UsageRecord", "UsageStore", "Migration", "MIGRATIONS", "hash_prompt", "plot_stats"]


def hash_prompt(prompt: str) -> str:
    """sha256 hex digest of the prompt text (UTF-8): what the log keeps when prompts are private."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


@dataclass(frozen=True, kw_only=True)
class UsageRecord:
    """One routed request as the log keeps it.

    ``model`` is the model that answered (or the last one tried); ``requested_model`` what the
    caller asked for (``"auto"``, ``"auto:budget"`` or a model name). ``chain`` lists the attempts
    in order, each ``{"model", "status", "reason", "latency_ms"}``. ``prompt`` is ``None`` when
    privacy hides it; ``prompt_hash`` is always the sha256 of the text (see :func:`hash_prompt`).
    """

    request_id: str
    created_at: float
    task: str | None
    model: str
    requested_model: str
    tier: str | None
    predicted_quality: float | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: float
    status: str
    error: str | None = None
    chain: list[dict[str, Any]] = field(default_factory=list)
    escalated: bool = False
    stream: bool = False
    prompt: str | None = None
    prompt_hash: str = ""
    client: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- schema ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Migration:
    """Schema version ``version``: ``upgrade`` runs inside the migration transaction."""

    version: int
    description: str
    upgrade: Callable[[Connection], None]


def _v1_create_tables(conn: Connection) -> None:
    # Frozen copy of the version-1 layout: later migrations alter it, they never edit this.
    md = sa.MetaData()
    sa.Table(
        "requests", md,
        sa.Column("request_id", sa.String(255), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False, index=True),
        sa.Column("task", sa.String(64)),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("requested_model", sa.String(255), nullable=False),
        sa.Column("tier", sa.String(64)),
        sa.Column("predicted_quality", sa.Float),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("chain", sa.Text, nullable=False),
        sa.Column("escalated", sa.Boolean, nullable=False),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("prompt", sa.Text),
        sa.Column("prompt_hash", sa.String(64), nullable=False),
        sa.Column("client", sa.String(255)),
    )
    sa.Table(
        "feedback", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(255), nullable=False, index=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("comment", sa.Text),
    )
    md.create_all(conn, checkfirst=False)  # an unrelated table of the same name is an error


#: Ordered schema migrations; ``MIGRATIONS[i].version == i + 1``.
MIGRATIONS: tuple[Migration, ...] = (Migration(1, "requests and feedback tables", _v1_create_tables),)

_VERSIONS = sa.Table(
    "schema_version", sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", sa.Float, nullable=False),
    sa.Column("description", sa.String(255), nullable=False),
)
_FIELDS = tuple(f.name for f in fields(UsageRecord))
_BOOL_COLS, _FLOAT_COLS = ("escalated", "stream"), ("created_at", "cost_usd", "latency_ms")
_STOP, _WAKE = object(), object()  # queue markers: end the writer; write what you hold now
_PG_LOCK_KEY = 0x726F7574  # pg_advisory_xact_lock key serialising concurrent migrations


def _describe(exc: BaseException) -> str:
    """The driver's error, without SQLAlchemy's statement and parameters (they may hold prompts)."""
    orig = getattr(exc, "orig", None) or exc
    return f"{type(orig).__name__}: {str(orig).strip()}"


class UsageStore:
    """A usage log in any SQLAlchemy database; see the module docstring."""

    def __init__(self, url: str = "sqlite:///router_usage.db", *, store_prompts: bool = False,
                 queue_size: int = 10000, batch_size: int = 200, max_wait: float = 0.05,
                 busy_timeout_ms: int = 5000):
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be >= 1")
        self.store_prompts = store_prompts
        self._batch_size, self._max_wait = batch_size, max_wait
        self._url_text = sa.make_url(url).render_as_string(hide_password=True)
        self._engine = self._create_engine(url, busy_timeout_ms)
        try:
            self._migrate()
        except BaseException:
            self._engine.dispose()
            raise
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._enqueued = self._done = self._written = self._failed = self._dropped = 0
        self.last_error: str | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="router-usage-writer", daemon=True)
        self._thread.start()
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
        known = len(MIGRATIONS)
        if [m.version for m in MIGRATIONS] != list(range(1, known + 1)):
            raise ArtifactError("MIGRATIONS must be numbered 1, 2, ... in order")
        try:
            with self._engine.connect() as conn:
                conn.execution_options(sqlite_begin="IMMEDIATE")  # take SQLite's write lock first
                with conn.begin():
                    if conn.dialect.name == "postgresql":
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
                    _VERSIONS.create(conn, checkfirst=True)
                    current = conn.execute(sa.select(sa.func.max(_VERSIONS.c.version))).scalar() or 0
                    if current > known:
                        raise ArtifactError(
                            f"usage database {self._url_text} has schema version {current}, but this "
                            f"router knows versions up to {known}; upgrade the router package "
                            "(the database was left untouched)")
                    for m in MIGRATIONS[current:]:
                        m.upgrade(conn)
                        conn.execute(_VERSIONS.insert().values(
                            version=m.version, applied_at=time.time(), description=m.description))
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
        try:
            with self._lock:
                if not self._closed:
                    self._queue.put_nowait(record)
                    self._enqueued += 1
                    return
            self._drop("store is closed")
        except queue.Full:
            self._drop(f"queue full ({self._queue.maxsize} records)")
        except Exception as exc:  # pragma: no cover - defensive
            self._drop(_describe(exc))

    def _drop(self, why: str) -> None:
        with self._lock:
            self._dropped += 1
            self.last_error = f"record dropped: {why}"

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every record queued before this call is written (or failed); False on timeout."""
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

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, stop the writer and release the database (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        try:
            self._queue.put(_STOP, timeout=timeout)
            self._thread.join(timeout)
        except queue.Full:
            self.last_error = "close: the writer did not drain the queue in time"
        self._engine.dispose()

    def __enter__(self) -> UsageStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def failed_writes(self) -> int:
        """Records whose insert failed (they are not in the database)."""
        return self._failed

    @property
    def dropped(self) -> int:
        """Records never queued: the queue was full or the store closed."""
        return self._dropped

    @property
    def written(self) -> int:
        """Records this store has inserted since it was opened."""
        return self._written

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
                written, error = self._write_batch(batch)
            except Exception as exc:  # the writer must survive anything
                error = _describe(exc)
            with self._cond:
                self._written += written
                self._failed += len(batch) - written
                self._done += len(batch)
                if error is not None:
                    self.last_error = error
                self._cond.notify_all()

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
            return len(rows), error
        except sa.exc.IntegrityError:  # e.g. a duplicate request_id: insert one by one, lose only it
            written = 0
            for row in rows:
                try:
                    with self._engine.begin() as conn:
                        conn.execute(self._requests.insert(), [row])
                    written += 1
                except Exception as exc:
                    error = f"insert of request {row['request_id']!r} failed: {_describe(exc)}"
            return written, error
        except Exception as exc:
            return 0, f"insert of {len(rows)} usage records failed: {_describe(exc)}"

    def _to_row(self, rec: UsageRecord) -> dict[str, Any]:
        row = {name: getattr(rec, name) for name in _FIELDS}
        if not row["prompt_hash"] and rec.prompt is not None:
            row["prompt_hash"] = hash_prompt(rec.prompt)
        if not self.store_prompts:
            row["prompt"] = None
        row["chain"] = json.dumps(list(rec.chain), default=str)
        for k in _BOOL_COLS:
            row[k] = bool(row[k])
        return row

    # -- reads -----------------------------------------------------------------------------
    @staticmethod
    def _from_row(row: Any) -> UsageRecord:
        d = dict(row._mapping)
        d["chain"] = json.loads(d["chain"] or "[]")
        for k in _BOOL_COLS:
            d[k] = bool(d[k])
        for k in _FLOAT_COLS + ("predicted_quality",):
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

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(self._requests)).scalar() or 0)

    # -- feedback --------------------------------------------------------------------------
    def add_feedback(self, request_id: str, score: float, comment: str | None = None) -> int:
        """Store a score in [0, 1] for a logged request; returns the feedback id.

        Raises :class:`InvalidRequestError` for a score outside [0, 1] or an unknown request id.
        """
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score) \
                or not 0.0 <= score <= 1.0:
            raise InvalidRequestError(f"feedback score must be a number in [0, 1], got {score!r}")
        if self.get(request_id) is None:
            self.flush()  # the request may still be waiting in the queue
            if self.get(request_id) is None:
                raise InvalidRequestError(f"unknown request_id {request_id!r}: it is not in the usage log")
        with self._engine.begin() as conn:
            res = conn.execute(self._feedback.insert().values(
                request_id=request_id, created_at=time.time(), score=float(score), comment=comment))
            return int(res.inserted_primary_key[0])

    def feedback(self, request_id: str | None = None) -> list[dict[str, Any]]:
        """Feedback rows ``{id, request_id, created_at, score, comment}`` in insertion order."""
        q = sa.select(self._feedback).order_by(self._feedback.c.id)
        if request_id is not None:
            q = q.where(self._feedback.c.request_id == request_id)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # -- statistics ------------------------------------------------------------------------
    def stats(self, catalog: ModelCatalog, baseline_model: str = "gpt-4o",
              since: float | None = None) -> dict[str, Any]:
        """Totals, savings against ``baseline_model`` (each request's tokens at the baseline's
        own input/output prices), model and task breakdowns, latency percentiles."""
        import numpy as np

        base = catalog[baseline_model]  # UnknownModelError for an unknown baseline
        c = self._requests.c
        q = sa.select(c.model, c.task, c.prompt_tokens, c.completion_tokens, c.cost_usd,
                      c.latency_ms, c.status, c.chain, c.escalated)
        if since is not None:
            q = q.where(c.created_at >= since)
        n = ok = pt = ct = escalations = fallbacks = 0
        actual = baseline = 0.0
        models: Counter[str] = Counter()
        by_task: defaultdict[str, float] = defaultdict(float)
        latencies: list[float] = []
        with self._engine.connect() as conn:
            for r in conn.execute(q):
                n += 1
                ok += r.status == "ok"
                pt += r.prompt_tokens
                ct += r.completion_tokens
                actual += r.cost_usd
                baseline += base.cost(r.prompt_tokens, r.completion_tokens)
                models[r.model] += 1
                by_task[r.task or "unknown"] += r.cost_usd
                latencies.append(float(r.latency_ms))
                escalations += bool(r.escalated)
                fallbacks += len(json.loads(r.chain or "[]")) > 1
        pct = (lambda p: float(np.percentile(latencies, p))) if latencies else (lambda p: None)
        return {
            "requests": n, "ok": ok, "errors": n - ok,
            "total_prompt_tokens": pt, "total_completion_tokens": ct,
            "actual_cost": actual, "baseline_model": base.name, "baseline_cost": baseline,
            "savings_usd": baseline - actual,
            "savings_pct": 100.0 * (baseline - actual) / baseline if baseline > 0 else 0.0,
            "model_distribution": dict(models.most_common()),
            "cost_by_task": dict(sorted(by_task.items(), key=lambda kv: -kv[1])),
            "latency_ms": {"p50": pct(50), "p95": pct(95)},
            "escalations": escalations, "fallbacks": fallbacks,
            "failed_writes": self.failed_writes, "dropped": self.dropped,
        }


def plot_stats(stats: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write ``model_distribution.png``, ``cost_by_task.png`` and ``cost_vs_baseline.png``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base_name = stats.get("baseline_model", "baseline")
    charts = [
        ("model_distribution.png", "requests per model", "requests", stats.get("model_distribution", {})),
        ("cost_by_task.png", "cost by task", "USD", stats.get("cost_by_task", {})),
        ("cost_vs_baseline.png", f"actual cost vs all on {base_name}", "USD",
         {"actual": stats.get("actual_cost", 0.0), base_name: stats.get("baseline_cost", 0.0)}),
    ]
    paths = []
    for name, title, ylabel, data in charts:
        fig = Figure(figsize=(7, 4.5))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        if data:
            labels = [str(k) for k in data]
            ax.bar(range(len(labels)), list(data.values()), color="tab:blue")
            ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        fig.tight_layout()
        path = out_dir / name
        fig.savefig(path, dpi=100)
        paths.append(path)
    return paths

"""The usage log's schema, as an ordered tuple of managed migrations.

Opening a store applies the pending ones in one locked transaction (:func:`migrate`); the tables
are then reflected from the database, so reads and writes use exactly the migrated layout. To
change the schema, append ``Migration(N + 1, "...", upgrade)``, add the field to
:class:`~router.serving.usage.record.UsageRecord` and never edit an existing migration: old
databases upgrade in place, a database newer than the package is refused untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ...errors import ArtifactError

__all__ = ["Migration", "MIGRATIONS", "migrate"]


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


# Frozen copy of what version 2 adds (plain ADD COLUMN: SQLite and PostgreSQL upgrade in place).
_V2_REQUESTS = (
    ("router_version", "VARCHAR(255)"),
    ("routed_model", "VARCHAR(255)"),
    ("propensity", "FLOAT"),
    ("explored", "BOOLEAN"),
    ("target_quality", "FLOAT"),
    ("candidates", "TEXT"),  # JSON list of {model, quality, cost}
    ("classifier_text", "TEXT"),
    ("answer", "TEXT"),
)
_V2_FEEDBACK = (
    ("origin", "VARCHAR(16) NOT NULL DEFAULT 'human'"),
    # a full outcome (imported): the prompt and model it scores, with what it cost
    ("model", "VARCHAR(255)"),
    ("prompt_id", "VARCHAR(255)"),
    ("prompt", "TEXT"),
    ("prompt_hash", "VARCHAR(64)"),
    ("cost_usd", "FLOAT"),
    ("prompt_tokens", "INTEGER"),
    ("completion_tokens", "INTEGER"),
    ("propensity", "FLOAT"),
    ("task", "VARCHAR(64)"),
    ("answer", "TEXT"),
    ("source", "VARCHAR(255)"),
    ("outcome_at", "FLOAT"),  # when the outcome happened (created_at is when it was stored)
    ("meta", "TEXT"),  # JSON: e.g. a judge's model and rubric version
)


def _v2_learning_loop(conn: Connection) -> None:
    for name, ddl in _V2_REQUESTS:
        conn.execute(sa.text(f"ALTER TABLE requests ADD COLUMN {name} {ddl}"))
    for name, ddl in _V2_FEEDBACK:
        conn.execute(sa.text(f"ALTER TABLE feedback ADD COLUMN {name} {ddl}"))
    conn.execute(sa.text("CREATE INDEX ix_feedback_origin_created ON feedback (origin, created_at)"))
    conn.execute(sa.text("CREATE INDEX ix_feedback_prompt_model ON feedback (prompt_id, model)"))


def _v3_statistics(conn: Connection) -> None:
    # what a row is (traffic, or simulated by the learning loop), and how many attempts it made,
    # so /v1/stats aggregates in SQL instead of reading every row's JSON chain
    conn.execute(sa.text("ALTER TABLE requests ADD COLUMN origin VARCHAR(16) NOT NULL DEFAULT 'traffic'"))
    conn.execute(sa.text("ALTER TABLE requests ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1"))
    length = "json_array_length(chain::json)" if conn.dialect.name == "postgresql" else "json_array_length(chain)"
    conn.execute(sa.text(f"UPDATE requests SET attempts = {length} WHERE {length} <> 1"))
    conn.execute(sa.text("UPDATE requests SET origin = 'simulated' WHERE request_id LIKE 'sim-%'"))
    # covering indexes: the totals in index order (no sort), the latency percentiles by offset
    conn.execute(sa.text("CREATE INDEX ix_requests_stats ON requests (origin, status, model, task, created_at, "
                         "requested_model, prompt_tokens, completion_tokens, cost_usd, escalated, attempts)"))
    conn.execute(sa.text("CREATE INDEX ix_requests_latency ON requests (origin, latency_ms, status, created_at)"))


#: Ordered schema migrations; ``MIGRATIONS[i].version == i + 1``.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "requests and feedback tables", _v1_create_tables),
    Migration(2, "learning loop: router version, candidates, propensity, stored texts; feedback origin "
                 "and full outcomes", _v2_learning_loop),
    Migration(3, "statistics in SQL: requests.origin (traffic | simulated), requests.attempts, covering "
                 "indexes", _v3_statistics),
)

_VERSIONS = sa.Table(
    "schema_version", sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", sa.Float, nullable=False),
    sa.Column("description", sa.String(255), nullable=False),
)
_PG_LOCK_KEY = 0x726F7574  # pg_advisory_xact_lock key serialising concurrent migrations


def migrate(conn: Connection, where: str, migrations: tuple[Migration, ...] | None = None) -> int:
    """Apply the pending ``migrations`` (default :data:`MIGRATIONS`) inside the caller's
    transaction on ``conn``; returns the schema version now. ``where`` names the database in
    errors. :class:`ArtifactError` for a database newer than this package."""
    migrations = MIGRATIONS if migrations is None else migrations
    known = len(migrations)
    if [m.version for m in migrations] != list(range(1, known + 1)):
        raise ArtifactError("MIGRATIONS must be numbered 1, 2, ... in order")
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    _VERSIONS.create(conn, checkfirst=True)
    current = conn.execute(sa.select(sa.func.max(_VERSIONS.c.version))).scalar() or 0
    if current > known:
        raise ArtifactError(
            f"usage database {where} has schema version {current}, but this router knows versions up "
            f"to {known}; upgrade the router package (the database was left untouched)")
    for m in migrations[current:]:
        m.upgrade(conn)
        conn.execute(_VERSIONS.insert().values(version=m.version, applied_at=time.time(),
                                               description=m.description))
    return max(current, known)

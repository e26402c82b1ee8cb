"""The usage log's chunked readers (the learning loop, the judge and drift read the log with
these; memory stays bounded by the chunk size, on SQLite and PostgreSQL alike)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from .record import UsageRecord
from .rows import from_row

__all__ = ["record_chunks", "training_rows"]


def record_chunks(engine: sa.Engine, requests: sa.Table, record_cols: Sequence[Any], since: float | None = None,
                  until: float | None = None, *, chunk_size: int = 5000,
                  answered: bool = False) -> Iterator[list[UsageRecord]]:
    """Written records with ``since <= created_at < until``, oldest first, yielded in lists of
    at most ``chunk_size`` (memory stays bounded by it). ``answered``: only rows whose answer
    and text (prompt or classifier text) were stored (what a judge can grade)."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    r = requests
    q = sa.select(*record_cols).order_by(r.c.created_at, r.c.request_id)
    if since is not None:
        q = q.where(r.c.created_at >= since)
    if until is not None:
        q = q.where(r.c.created_at < until)
    if answered:
        q = q.where(r.c.answer.is_not(None), sa.or_(r.c.prompt.is_not(None), r.c.classifier_text.is_not(None)))
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True).execute(q)
        while part := result.fetchmany(chunk_size):
            yield [from_row(x) for x in part]


def training_rows(engine: sa.Engine, feedback: sa.Table, requests: sa.Table, since: float | None = None,
                  chunk_size: int = 5000) -> Iterator[list[dict[str, Any]]]:
    """Feedback joined with its request (when it scores a logged one), oldest first, yielded
    in chunks of dicts: feedback columns as they are, the request's columns prefixed ``req_``
    (``None`` for imported outcomes). Memory stays bounded by ``chunk_size``."""
    f, r = feedback, requests
    req_cols = [r.c[k].label(f"req_{k}") for k in (
        "request_id", "created_at", "task", "model", "prompt", "prompt_hash", "classifier_text",
        "routed_model", "propensity", "explored", "candidates", "cost_usd", "prompt_tokens",
        "completion_tokens", "chain", "escalated", "status", "router_version", "answer")]
    q = sa.select(f, *req_cols).select_from(f.outerjoin(r, f.c.request_id == r.c.request_id))
    if since is not None:
        q = q.where(f.c.created_at >= since)
    q = q.order_by(f.c.id)
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True).execute(q)
        while True:
            part = result.fetchmany(chunk_size)
            if not part:
                break
            yield [dict(x._mapping) for x in part]

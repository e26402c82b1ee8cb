"""A :class:`~router.serving.usage.record.UsageRecord` to and from a row of the requests table,
and the implicit feedback an inserted row implies."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from .record import REQUEST_ORIGINS, UsageRecord, hash_prompt

__all__ = ["FIELDS", "to_row", "from_row", "implicit_feedback"]

#: The record's fields, which are columns of the requests table of the same name.
FIELDS = tuple(f.name for f in fields(UsageRecord))
_BOOL_COLS, _FLOAT_COLS = ("escalated", "stream"), ("created_at", "cost_usd", "latency_ms")
_OPT_FLOAT_COLS = ("predicted_quality", "propensity", "target_quality")


def to_row(rec: UsageRecord, *, store_prompts: bool, store_responses: bool) -> dict[str, Any]:
    """The row of ``rec`` (prompt texts and the answer kept only when asked; chain and candidates
    as JSON; ``attempts`` = the chain's length). TypeError / ValueError for a bad record."""
    if not isinstance(rec, UsageRecord):
        raise TypeError(f"expected a UsageRecord, got {type(rec).__name__}")
    if rec.origin not in REQUEST_ORIGINS:
        raise ValueError(f"origin must be one of {list(REQUEST_ORIGINS)}, got {rec.origin!r}")
    row = {name: getattr(rec, name) for name in FIELDS}
    if not row["prompt_hash"] and rec.prompt is not None:
        row["prompt_hash"] = hash_prompt(rec.prompt)
    if not store_prompts:
        row["prompt"] = row["classifier_text"] = None
    if not store_responses:
        row["answer"] = None
    row["attempts"] = len(rec.chain)
    row["chain"] = json.dumps(list(rec.chain), default=str)
    row["candidates"] = json.dumps(list(rec.candidates), default=str) if rec.candidates else None
    for k in _BOOL_COLS:
        row[k] = bool(row[k])
    return row


def from_row(row: Any) -> UsageRecord:
    """The record of a selected row (the record's columns)."""
    d = dict(row._mapping)
    d["chain"] = json.loads(d["chain"] or "[]")
    d["candidates"] = json.loads(d["candidates"] or "[]")
    for k in _BOOL_COLS:
        d[k] = bool(d[k])
    d["explored"] = None if d["explored"] is None else bool(d["explored"])
    for k in _FLOAT_COLS + _OPT_FLOAT_COLS:
        d[k] = None if d[k] is None else float(d[k])
    return UsageRecord(**d)


def implicit_feedback(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An escalation that fired is implicit evidence that the answer it replaced was weak: one
    ``origin=implicit`` score 0 (a feedback row) for each attempt the chain marks ``escalated``."""
    return [{"request_id": row["request_id"], "created_at": row["created_at"], "score": 0.0,
             "comment": "escalation fired", "origin": "implicit", "model": e.get("model")}
            for row in rows if row["escalated"]
            for e in json.loads(row["chain"]) if isinstance(e, dict) and e.get("status") == "escalated"]

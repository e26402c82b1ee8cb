"""Bulk feedback import (``router feedback import FILE.jsonl``): validate every line, then store
the good rows in one transaction.

A line is either feedback for a logged request::

    {"request_id": "...", "score": 0.8}          # or "thumbs": "up" | "down", or "rating": 1..10
                                                 # optional "task": the request's true task label

or a full outcome in the outcome JSONL format, plus optional learning-loop fields::

    {"prompt_id": "p1", "prompt": "...", "model": "m", "score": 1,
     "cost": 0.0004, "prompt_tokens": 30, "completion_tokens": 120,
     "propensity": 0.9, "task": "code", "created_at": 1700000000, "answer": "...", "source": "arena"}

Either may name an ``origin`` (default: the importer's, ``import``) and a ``comment``. Bad lines
(malformed JSON, missing prompt, score out of range, unknown model, unknown request id, ...) are
reported by file and line; with ``strict`` any bad line refuses the whole file. Either way nothing
is half-imported: the accepted rows go in with one transaction.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import DataError, InvalidRequestError
from ...tasks.taxonomy import TASK_TYPES
from .record import ORIGINS, score_from

__all__ = ["ImportReport", "import_feedback", "parse_feedback_line"]

_OUTCOME_KEYS = {"prompt_id", "prompt", "model", "score", "thumbs", "rating", "cost", "prompt_tokens",
                 "completion_tokens", "propensity", "task", "created_at", "answer", "source", "origin", "comment"}
_REQUEST_KEYS = {"request_id", "score", "thumbs", "rating", "comment", "origin", "model", "task"}


@dataclass
class ImportReport:
    """``rows``: lines read; ``imported``: rows stored; ``errors``: ``(line, message)``;
    ``by_origin`` / ``by_kind`` (``outcome`` or ``request``): counts of the stored rows."""

    path: str
    rows: int = 0
    imported: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    by_origin: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    refused: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "rows": self.rows, "imported": self.imported, "refused": self.refused,
                "errors": [{"line": n, "error": e} for n, e in self.errors],
                "by_origin": self.by_origin, "by_kind": self.by_kind}


def _number(obj: dict, key: str, *, low: float = 0.0, high: float = math.inf, low_open: bool = False,
            integer: bool = False) -> float | int | None:
    v = obj.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InvalidRequestError(f"{key!r} must be a number, got {v!r}")
    if integer and int(v) != v:
        raise InvalidRequestError(f"{key!r} must be a whole number, got {v!r}")
    if (v <= low if low_open else v < low) or v > high:
        bounds = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise InvalidRequestError(f"{key!r} must be in {bounds}, got {v!r}")
    return int(v) if integer else float(v)


def _text(obj: dict, key: str, required: bool = False) -> str | None:
    v = obj.get(key)
    if v is None or v == "":
        if required:
            raise InvalidRequestError(f"missing {key!r}")
        return None
    if not isinstance(v, (str, int)) or isinstance(v, bool):
        raise InvalidRequestError(f"{key!r} must be a string, got {type(v).__name__}")
    return str(v)


def _task(obj: dict) -> str | None:
    task = _text(obj, "task")
    if task is not None and task not in TASK_TYPES:
        raise InvalidRequestError(f"unknown task {task!r}; known: {list(TASK_TYPES)}")
    return task


def parse_feedback_line(obj: Any, *, default_origin: str = "import",
                        models: Collection[str] | None = None) -> dict[str, Any]:
    """One decoded JSONL line -> a feedback row (columns of the feedback table).
    :class:`InvalidRequestError` names what is wrong; ``models``: the known model names (None:
    any name; ``router retrain`` then names and leaves out models outside the router's catalog)."""
    if not isinstance(obj, dict):
        raise InvalidRequestError("a line must be a JSON object")
    origin = obj.get("origin", default_origin)
    if origin not in ORIGINS:
        raise InvalidRequestError(f"'origin' must be one of {list(ORIGINS)}, got {origin!r}")
    if origin == "judge":  # a judge grade records its judge and rubric; only `router judge` writes them
        raise InvalidRequestError("'origin' judge is not importable: judge grades are written by `router judge`, "
                                  "which records the judge model and rubric with each; import them as 'import'")
    score = score_from(score=obj.get("score"), thumbs=obj.get("thumbs"), rating=obj.get("rating"))
    comment = _text(obj, "comment")
    model = _text(obj, "model")
    if model is not None and models is not None and model not in models:
        raise InvalidRequestError(f"unknown model {model!r}")
    if "request_id" in obj and "prompt" not in obj:
        unknown = sorted(set(obj) - _REQUEST_KEYS)
        if unknown:
            raise InvalidRequestError(f"unknown key(s) {unknown} for feedback on a logged request")
        return {"request_id": _text(obj, "request_id", required=True), "score": score, "comment": comment,
                "origin": origin, "model": model, "task": _task(obj)}
    unknown = sorted(set(obj) - _OUTCOME_KEYS)
    if unknown:
        raise InvalidRequestError(f"unknown key(s) {unknown}; a line is {{request_id, score}} or an outcome "
                                  "{prompt_id, prompt, model, score, ...}")
    prompt_id = _text(obj, "prompt_id", required=True)
    prompt = obj.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequestError("missing 'prompt' (a non-empty string)")
    if model is None:
        raise InvalidRequestError("missing 'model'")
    task = _task(obj)
    answer = obj.get("answer")
    if answer is not None and not isinstance(answer, str):
        raise InvalidRequestError("'answer' must be a string")
    return {"prompt_id": prompt_id, "prompt": prompt, "model": model, "score": score,
            "cost_usd": _number(obj, "cost"),
            "prompt_tokens": _number(obj, "prompt_tokens", integer=True),
            "completion_tokens": _number(obj, "completion_tokens", integer=True),
            "propensity": _number(obj, "propensity", low=0.0, high=1.0, low_open=True),
            "task": task, "outcome_at": _number(obj, "created_at"), "answer": answer,
            "source": _text(obj, "source"), "origin": origin, "comment": comment}


def import_feedback(store: Any, path: str | Path, *, strict: bool = False, default_origin: str = "import",
                    models: Collection[str] | None = None) -> ImportReport:
    """Validate every line of ``path``, then store the good rows in one transaction (none with
    ``strict`` when any line is bad; :class:`DataError` then names the first bad lines)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no such feedback file", path=str(path))
    report = ImportReport(str(path))
    good: list[tuple[int, dict[str, Any]]] = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            report.rows += 1
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                report.errors.append((line_no, f"malformed JSON ({exc.msg})"))
                continue
            try:
                good.append((line_no, parse_feedback_line(obj, default_origin=default_origin, models=models)))
            except InvalidRequestError as exc:
                report.errors.append((line_no, str(exc)))
    wanted = [row["request_id"] for _, row in good if "prompt" not in row]
    known = store.known_requests(wanted) if wanted else set()
    kept = []
    for line_no, row in good:
        if "prompt" not in row and row["request_id"] not in known:
            report.errors.append((line_no, f"unknown request_id {row['request_id']!r}: it is not in the usage log"))
        else:
            kept.append(row)
    report.errors.sort()
    if strict and report.errors:
        report.refused = True
        shown = "; ".join(f"line {n}: {e}" for n, e in report.errors[:5])
        more = f" (and {len(report.errors) - 5} more)" if len(report.errors) > 5 else ""
        raise DataError(f"{len(report.errors)} bad line(s), nothing imported (--strict): {shown}{more}",
                        path=str(path))
    report.imported = store.add_feedback_rows(kept)
    report.by_origin = dict(Counter(r["origin"] for r in kept))
    report.by_kind = dict(Counter("outcome" if "prompt" in r else "request" for r in kept))
    return report

"""The gateway's feedback read-back: ``GET /v1/feedback/{request_id}``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...errors import InvalidRequestError, UsageLogError
from ..usage.record import client_feedback
from .errors import error_response

__all__ = ["add_feedback_reader", "store_feedback", "MAX_COMMENT_CHARS", "SCORE_FIELDS", "pick_score_field"]

#: The longest feedback comment accepted (characters); longer ones get a 413.
MAX_COMMENT_CHARS = 4000
#: The ways a client may give its score, the first present winning.
SCORE_FIELDS = ("score", "thumbs", "rating")


def pick_score_field(body: dict[str, Any]) -> tuple[dict[str, Any], str | None, list[str]]:
    """``body`` with one score field kept (``score`` > ``thumbs`` > ``rating``) -> (body, the
    field used, the fields ignored); the answer names both, so a client sending two learns which
    one counted."""
    given = [k for k in SCORE_FIELDS if body.get(k) is not None]
    if len(given) <= 1:
        return body, (given[0] if given else None), []
    kept = {k: v for k, v in body.items() if k not in given[1:]}
    return kept, given[0], given[1:]


def add_feedback_reader(app: FastAPI, store: Any, check_auth: Callable[[Request], tuple[Response | None, Any]]) -> None:
    """Add ``GET /v1/feedback/{request_id}`` to ``app``: ``{"object": "list", "request_id",
    "data": [feedback rows, oldest first]}``; 404 for a request the log does not know, 503 without
    a usage log."""

    @app.get("/v1/feedback/{request_id}")
    async def feedback_of(request_id: str, request: Request) -> Response:
        denied, _ = check_auth(request)
        if denied is not None:
            return denied
        if store is None:
            return error_response(503, "the usage log is disabled: no feedback", "server_error", "usage_disabled")

        def read() -> tuple[bool, list[dict[str, Any]]]:
            store.flush(2.0)
            rows = store.feedback(request_id)
            return bool(rows) or store.get(request_id) is not None, rows

        known, rows = await run_in_threadpool(read)
        if not known:
            return error_response(404, f"unknown request id {request_id!r}", "invalid_request_error",
                                  "request_not_found", "request_id")
        return Response(json.dumps({"object": "list", "request_id": request_id, "data": rows}, default=str),
                        media_type="application/json")


async def store_feedback(store: Any, body: Any) -> Response:
    """Validate and store one ``POST /v1/feedback`` body (already parsed) -> the answer: 400
    naming a bad field, 413 for an over-long comment, 404 for an unknown request, 503 when the
    usage log cannot take it; else ``{"object": "feedback", "id", "request_id", "score", "origin",
    "used"[, "ignored"]}``."""
    if not isinstance(body, dict):
        return error_response(400, "the request body must be a JSON object")
    comment = body.get("comment")
    if isinstance(comment, str) and len(comment) > MAX_COMMENT_CHARS:
        return error_response(413, f"'comment' is longer than {MAX_COMMENT_CHARS} characters "
                                   f"({len(comment)})", "invalid_request_error", "comment_too_long", "comment")
    body, used, ignored = pick_score_field(body)
    try:  # origin: a client cannot claim judge; score, thumbs or a 1-10 rating
        kw = client_feedback(body)
    except InvalidRequestError as exc:
        return error_response(400, str(exc), param=exc.param)
    try:
        fid = await run_in_threadpool(lambda: store.add_feedback(**kw))
    except InvalidRequestError as exc:  # values are checked above: this is an unknown request id
        return error_response(404, str(exc), "invalid_request_error", "request_not_found", "request_id")
    except UsageLogError as exc:  # locked, full or gone even after retries: nothing stored
        return error_response(503, str(exc), "server_error", "usage_unavailable")
    answer: dict[str, Any] = {"object": "feedback", "id": fid, "request_id": kw["request_id"],
                              "score": kw["score"], "origin": kw["origin"], "used": used}
    if ignored:
        answer["ignored"] = ignored
    return Response(json.dumps(answer), media_type="application/json")

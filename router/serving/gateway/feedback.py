"""The gateway's feedback read-back: ``GET /v1/feedback/{request_id}``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .errors import error_response

__all__ = ["add_feedback_reader", "MAX_COMMENT_CHARS"]

#: The longest feedback comment accepted (characters); longer ones get a 413.
MAX_COMMENT_CHARS = 4000


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

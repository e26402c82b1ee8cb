"""OpenAI-style error bodies: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.responses import Response

from ..client.failures import FATAL_STATUSES
from ...errors import InvalidRequestError, NoEligibleModelError, RouterError, UnknownModelError, UpstreamError

__all__ = ["error_response", "error_body", "map_exception"]


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
                   param: str | None = None, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(error_body(message, type_, code, param), ensure_ascii=False)
    return Response(body, status_code=status, media_type="application/json", headers=dict(headers or {}))


def map_exception(exc: BaseException) -> tuple[int, str, str, str | None, str | None]:
    """(HTTP status, message, type, code, param) for an exception raised while serving a request."""
    if isinstance(exc, UnknownModelError):
        return 404, str(exc), "invalid_request_error", "model_not_found", "model"
    if isinstance(exc, InvalidRequestError):
        return 400, str(exc), "invalid_request_error", None, exc.param
    if isinstance(exc, NoEligibleModelError):
        return 400, str(exc), "invalid_request_error", "no_eligible_model", None
    if isinstance(exc, UpstreamError):
        kind, status = exc.kind, exc.status_code
        if status in FATAL_STATUSES:  # the provider says the request is wrong: the caller's error
            upstream = exc.upstream_message or str(exc)
            return 400, f"the model provider rejected the request: {upstream}", "invalid_request_error", \
                "upstream_rejected", None
        if kind == "deadline":
            return 504, str(exc), "server_error", "deadline_exceeded", None
        if kind == "timeout" or status in (408, 504):
            return 504, str(exc), "server_error", "upstream_timeout", None
        return 502, str(exc), "server_error", "upstream_error", None
    if isinstance(exc, RouterError):
        return 500, str(exc), "server_error", "router_error", None
    return 500, "internal error in the router gateway", "server_error", "internal_error", None

"""The gateway app: OpenAI's chat-completions protocol in front of the router.

::

    app = create_app(Router.default(), usage=UsageStore("sqlite:///router_usage.db"),
                     base_url="http://localhost:8001/v1", api_keys=["sk-gateway-1"])
    # uvicorn.run(app)  — or `router serve`

Endpoints:

* ``POST /v1/chat/completions``: JSON, or ``stream: true`` as server-sent events in OpenAI's
  exact framing (``data: {chunk}\\n\\n`` ... ``data: [DONE]\\n\\n``). ``model`` is ``auto``,
  ``auto:<tier>`` or a catalog model (passed through). Routing options travel as top-level
  ``max_cost`` / ``min_quality`` or ``"router": {...}`` (what the SDK's ``extra_body`` sends).
  Response headers: ``x-router-model``, ``x-router-task``, ``x-router-tier`` (when known),
  ``x-router-request-id`` and ``x-router-cost`` (USD actually spent; for a stream, which is
  priced only when it ends, the routing estimate — the usage log has the actual cost), and the
  learning loop's ``x-router-version``, ``x-router-routed-model``, ``x-router-propensity``,
  ``x-router-explored`` and ``x-router-cascade`` (:mod:`.learning`).
  A stream that breaks after its first token ends with ``data: {"error": {...}}`` and
  ``data: [DONE]`` (the OpenAI SDK raises ``APIError`` on that event).
* ``GET /v1/models``: the catalog's models plus ``auto``, ``auto:budget``, ``auto:balanced``,
  ``auto:quality``.
* ``POST /v1/feedback``: ``{"request_id", "score": 0..1}``, ``{"request_id", "thumbs": "up"|"down"}``
  or ``{"request_id", "rating": 1..10}`` (optional ``comment``, at most ``MAX_COMMENT_CHARS``
  characters, else 413; ``model``; ``origin``: ``human``, the default, or ``implicit``; a client
  cannot claim ``judge``), validated by :func:`~router.serving.usage.record.client_feedback` and
  stored with ``UsageStore.add_feedback``; when several score fields are sent ``score`` >
  ``thumbs`` > ``rating`` wins and the answer says so (``"used"``, ``"ignored"``).
  ``GET /v1/feedback/{request_id}``: the feedback stored for a request (404 for an unknown one).
* ``GET /v1/stats`` (``?baseline=gpt-4o&since=<unix time>``): ``UsageStore.stats``.
* ``GET /health`` (no auth, always HTTP 200): ``{"status": "ok" | "degraded", "reasons": [...]}``,
  degraded while the usage log fails, journals or has lost rows, or every model cools down;
  plus the models cooling down and the usage log's counters.

Errors are OpenAI-style bodies ``{"error": {"message", "type", "param", "code"}}``: 400 malformed
JSON / invalid messages or options, 401 missing or wrong bearer key (when ``api_keys`` are set),
404 unknown model or path, 413 body over ``max_body_bytes`` (checked while reading, before any
parsing), 502 upstream failure after retries and fallbacks, 504 upstream timeout or the request's
``deadline`` passed. Keys are compared in constant time and never logged. Every chat request
past authentication gets a log row (status ``rejected`` for 400 / 404 / 413, wherever decided).
A caller that hangs up cancels the work, upstream call included (row: ``cancelled``). Bodies
over ``LARGE_BODY_BYTES`` are parsed in a worker thread; big prompts are routed off the loop.

The app holds no module globals: everything lives in the closure of :func:`create_app`. Requests
run on the event loop with :class:`~router.serving.client.AsyncRoutedClient` (a sync ``RoutedClient``
passed in is used through its ``.aio`` twin, sharing its cooldowns and usage log); the usage log
and stats, which touch the database synchronously, run in the threadpool.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response, StreamingResponse

from ...errors import InvalidRequestError, UnknownModelError
from ...savings import BASELINE_MODEL
from ..client import (
    AUTO_MODELS,
    AsyncRoutedClient,
    ChatTransport,
    EscalationPolicy,
    JsonEventStream,
    RawTransport,
    RetryPolicy,
    RoutedClient,
    new_request_id,
)
from ..client.machine import DEFAULT_DEADLINE
from ..client.records import log_rejected
from .body import INVALID_JSON, cancel_on_disconnect, parse_json
from .feedback import add_feedback_reader, store_feedback
from .errors import error_response, map_exception
from .learning import learning_headers

__all__ = ["create_app", "LARGE_BODY_BYTES"]

#: Bodies larger than this are parsed in a worker thread (a 1 MB body costs the loop ~10 ms).
LARGE_BODY_BYTES = 256 * 1024

#: Keys only the Python SDK understands; in a JSON body they would let a caller inject upstream
#: headers or query strings, so the gateway drops them.
_SDK_ONLY = ("extra_headers", "extra_query", "extra_body", "timeout")
_JSON = "application/json"


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        try:
            n = int(length)
        except ValueError:
            raise InvalidRequestError("invalid Content-Length header") from None
        if n > limit:
            raise _TooLarge()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _router_headers(meta: dict[str, Any], cost: float | None) -> dict[str, str]:
    h = {"x-router-request-id": str(meta.get("request_id") or ""), "x-router-model": str(meta.get("model") or "")}
    if meta.get("task"):
        h["x-router-task"] = str(meta["task"])
    if meta.get("tier"):
        h["x-router-tier"] = str(meta["tier"])
    if cost is not None:
        h["x-router-cost"] = f"{cost:.10f}"
    h.update(learning_headers(meta))
    return h


def create_app(
    router: Any,
    *,
    client: RoutedClient | AsyncRoutedClient | None = None,
    usage: Any = None,
    api_keys: Sequence[str] = (),
    max_body_bytes: int = 1_000_000,
    base_url: str | None = None,
    api_key: str | None = None,
    retry: RetryPolicy | None = None,
    escalation: EscalationPolicy | None = EscalationPolicy(),
    timeout: float = 60.0,
    deadline: float | None = DEFAULT_DEADLINE,
    baseline_model: str = BASELINE_MODEL,
    transport: ChatTransport | None = None,
    title: str = "LLM router gateway",
    escalate: Any = "checks",
    exploration: float = 0.0,
    rng: Any = None,
    router_version: str | None = None,
    watcher: Any = None,
) -> FastAPI:
    """An OpenAI-compatible gateway over ``router`` (see the module docstring).

    ``client``: the routed client to use (sync or async); by default one is built from
    ``base_url`` / ``api_key`` (else each model's catalog provider), ``usage``, ``retry``,
    ``escalation``, ``timeout`` and ``transport`` (default: :class:`RawTransport`, which passes
    the provider's JSON through without building SDK objects). ``deadline``: seconds a request
    may take in all (attempts, backoff, fallbacks; a request's ``deadline`` overrides it).
    ``usage``: the usage log (feedback, stats; the client logs to
    its own, which is this one when the gateway builds the client). ``api_keys``: accepted bearer
    keys (none: no auth). ``escalate``, ``exploration``, ``rng`` and ``router_version``: the
    built client's learning-loop options (see :class:`~router.serving.client.RoutedClient`).
    ``watcher``: started with the app and stopped on shutdown (a
    :class:`~router.serving.reload.ChampionWatcher` whose ``on_change`` swaps the client's router).
    """
    if max_body_bytes < 1:
        raise ValueError("max_body_bytes must be >= 1")
    if client is None:
        aclient = AsyncRoutedClient(router, transport=transport or RawTransport(timeout=timeout), base_url=base_url,
                                    api_key=api_key, usage=usage, retry=retry or RetryPolicy(),
                                    escalation=escalation, timeout=timeout, escalate=escalate,
                                    exploration=exploration, rng=rng, router_version=router_version,
                                    deadline=deadline)
    elif transport is not None:
        raise ValueError("give a client or a transport, not both (the client has its own transport)")
    elif isinstance(client, RoutedClient):
        aclient = client.aio
    elif isinstance(client, AsyncRoutedClient):
        aclient = client
    else:
        raise TypeError(f"client must be a RoutedClient or AsyncRoutedClient, got {type(client).__name__}")
    store = usage if usage is not None else aclient.usage
    catalog = router.catalog
    keys = [k.encode() for k in api_keys if k]
    limit = int(max_body_bytes)

    created = int(time.time())
    models_payload = {"object": "list", "data": [
        {"id": m, "object": "model", "created": created, "owned_by": "router"} for m in AUTO_MODELS
    ] + [
        {"id": s.name, "object": "model", "created": created,
         "owned_by": urlparse(s.provider.base_url).hostname or "provider"} for s in catalog
    ]}
    models_body = json.dumps(models_payload).encode()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        if watcher is not None:
            watcher.start()
        try:
            yield
        finally:
            if watcher is not None:
                await run_in_threadpool(watcher.stop)
            await aclient.aclose()

    app = FastAPI(title=title, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.router = router
    app.state.client = aclient
    app.state.usage = store
    app.state.watcher = watcher

    # -- helpers -------------------------------------------------------------------------------
    def check_auth(request: Request) -> tuple[Response | None, str | None]:
        """(error response or None, client tag)."""
        if not keys:
            return None, None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token_b = token.strip().encode()
        ok = scheme.lower() == "bearer" and token_b and any(hmac.compare_digest(token_b, k) for k in keys)
        if not ok:
            return error_response(
                401, "Incorrect API key provided. Pass a gateway key as 'Authorization: Bearer <key>'.",
                "invalid_request_error", "invalid_api_key",
                headers={"www-authenticate": "Bearer"}), None
        return None, "key:" + hashlib.sha256(token_b).hexdigest()[:12]

    async def read_json(request: Request) -> tuple[Any, Response | None]:
        try:
            raw = await _read_body(request, limit)  # the size limit holds before any parsing
        except _TooLarge:
            return None, error_response(413, f"request body is larger than the limit of {limit} bytes",
                                        "invalid_request_error", "request_too_large")
        except InvalidRequestError as exc:
            return None, error_response(400, str(exc))
        try:
            if len(raw) > LARGE_BODY_BYTES:
                return await anyio.to_thread.run_sync(parse_json, raw), None
            return parse_json(raw), None
        except InvalidRequestError as exc:
            msg = str(exc)
            return None, error_response(400, msg, "invalid_request_error",
                                        "invalid_json" if msg == INVALID_JSON else None)

    def rejected(err: Response, rid: str, body: Any, tag: str | None) -> Response:
        """Log the row of a request the gateway rejected itself; ``err`` with the request id."""
        model = body.get("model") if isinstance(body, dict) else None
        stream = bool(body.get("stream")) if isinstance(body, dict) else False
        try:
            message = json.loads(err.body)["error"]["message"]
        except (ValueError, KeyError, TypeError):  # pragma: no cover - our own bodies are well-formed
            message = "rejected"
        log_rejected(aclient.usage, rid, model, InvalidRequestError(message), tag, stream)
        err.headers["x-router-request-id"] = rid
        return err


    def from_exception(exc: BaseException, request_id: str | None = None) -> Response:
        status, message, type_, code, param = map_exception(exc)
        headers = {"x-router-request-id": request_id} if request_id else None
        return error_response(status, message, type_, code, param, headers)

    # -- error handlers: everything OpenAI-style ------------------------------------------------
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        type_ = "invalid_request_error" if exc.status_code < 500 else "server_error"
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return error_response(exc.status_code, str(exc.detail), type_, code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> Response:
        return error_response(400, f"invalid request: {exc.errors()}", "invalid_request_error")

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Response:
        return from_exception(exc)

    # -- endpoints -------------------------------------------------------------------------------
    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        denied, tag = check_auth(request)
        if denied is not None:
            return denied
        rid = new_request_id()
        body, err = await read_json(request)
        if err is not None:
            return rejected(err, rid, None, tag)
        if not isinstance(body, dict):
            return rejected(error_response(400, "the request body must be a JSON object"), rid, body, tag)
        for k in _SDK_ONLY:
            body.pop(k, None)
        if tag is None and isinstance(body.get("user"), str):
            tag = "user:" + body["user"][:200]
        try:  # the client validates the request (model, messages, options) and logs rejections
            if body.get("stream"):
                stream = await cancel_on_disconnect(
                    request.receive, lambda: aclient.stream_json(body, request_id=rid, client_tag=tag))
            else:
                answer = await cancel_on_disconnect(
                    request.receive, lambda: aclient.create_json(body, request_id=rid, client_tag=tag))
                if answer is None:  # the caller went away: nobody reads this
                    return Response(status_code=499)
                return Response(answer.body, media_type=_JSON,
                                headers=_router_headers(answer.router, answer.router.get("cost_usd")))
        except Exception as exc:
            return from_exception(exc, rid)
        if stream is None:
            return Response(status_code=499)
        meta = stream.router
        return StreamingResponse(
            _sse(stream), media_type="text/event-stream",
            headers={**_router_headers(meta, meta.get("estimated_cost")),
                     "cache-control": "no-cache", "x-accel-buffering": "no"})

    async def _sse(stream: JsonEventStream):
        try:
            async for event in stream:
                yield b"data: " + event + b"\n\n"
            yield b"data: [DONE]\n\n"
        finally:
            with anyio.CancelScope(shield=True):  # log the request even when the caller went away
                await stream.aclose()

    @app.get("/v1/models")
    async def list_models(request: Request) -> Response:
        denied, _ = check_auth(request)
        if denied is not None:
            return denied
        return Response(models_body, media_type=_JSON)

    @app.get("/v1/models/{model_id:path}")
    async def get_model(model_id: str, request: Request) -> Response:
        denied, _ = check_auth(request)
        if denied is not None:
            return denied
        for m in models_payload["data"]:
            if m["id"] == model_id:
                return Response(json.dumps(m), media_type=_JSON)
        if model_id in catalog:
            return Response(json.dumps({"id": catalog.resolve(model_id), "object": "model", "created": created,
                                        "owned_by": "router"}), media_type=_JSON)
        return from_exception(UnknownModelError(model_id, catalog.names))

    @app.post("/v1/feedback")
    async def feedback(request: Request) -> Response:
        denied, _ = check_auth(request)
        if denied is not None:
            return denied
        if store is None:
            return error_response(503, "the usage log is disabled: feedback cannot be stored", "server_error",
                                  "usage_disabled")
        body, err = await read_json(request)
        if err is not None:
            return err
        return await store_feedback(store, body)

    add_feedback_reader(app, store, check_auth)

    @app.get("/v1/stats")
    async def stats(request: Request, baseline: str | None = None, since: float | None = None) -> Response:
        denied, _ = check_auth(request)
        if denied is not None:
            return denied
        if store is None:
            return error_response(503, "the usage log is disabled: no statistics", "server_error", "usage_disabled")
        base = baseline or baseline_model
        if base not in catalog:
            return error_response(400, f"unknown baseline model {base!r}", param="baseline", code="model_not_found")

        def compute() -> dict[str, Any]:
            store.flush(2.0)
            return store.stats(catalog, baseline_model=base, since=since)

        data = await run_in_threadpool(compute)
        data["object"] = "stats"
        return Response(json.dumps(data, default=str), media_type=_JSON)

    @app.get("/health")
    async def health() -> Response:
        cooling = aclient.cooling()
        reasons = list(store.health()) if store is not None else []
        if cooling and set(catalog.names) <= cooling:
            reasons.append(f"every model is cooling down after upstream failures ({', '.join(sorted(cooling))})")
        info: dict[str, Any] = {"status": "degraded" if reasons else "ok", "reasons": reasons,
                                "models": len(catalog), "cooling": sorted(cooling)}
        if store is not None:
            info["usage"] = store.counters()
        return Response(json.dumps(info), media_type=_JSON)

    return app

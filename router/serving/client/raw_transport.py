""":class:`RawTransport`: chat completions over its own httpx client and SSE decoder.

No SDK objects are built: an answer is the provider's JSON (:class:`RawCompletion`, passed
through by the gateway as received), a stream yields :class:`RawChunk` (each event's JSON text as
sent). Failures raise :class:`~router.errors.UpstreamError` as :class:`SDKTransport` does
(tested against it on the same upstream). The gateway built by ``router serve`` uses it; pass
``transport=RawTransport()`` to a routed client to use it elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import threading
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx

from ...errors import UpstreamError
from .failures import provider_message, retry_after
from .json_view import RawChunk, RawCompletion
from .sse import SSEDecoder
from .transport import ChatCall, Endpoint

__all__ = ["RawTransport", "request_body"]

_USER_AGENT = "learned-llm-router/0.1"
#: As the openai SDK's defaults: many concurrent requests per worker, keep-alive pool of 100.
_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)


def request_body(params: Mapping[str, Any]) -> bytes:
    """The JSON body of ``params`` as the SDK sends it: ``extra_body`` merged into the top level."""
    extra = params.get("extra_body")
    if extra:
        body = {k: v for k, v in params.items() if k != "extra_body"}
        body.update(extra)
    elif "extra_body" in params:
        body = {k: v for k, v in params.items() if k != "extra_body"}
    else:
        body = dict(params)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _status_error(response: httpx.Response, model: str) -> UpstreamError:
    try:
        body: Any = json.loads(response.content)
    except ValueError:
        body = None
    text = response.content.decode("utf-8", "replace") or response.reason_phrase
    msg = provider_message(body, text)
    return UpstreamError(f"HTTP {response.status_code}: {msg}", status_code=response.status_code, model=model,
                         kind="status", retry_after=retry_after(response.headers), upstream_message=msg)


def _transport_error(exc: httpx.HTTPError, model: str) -> UpstreamError:
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError("upstream timed out", model=model, kind="timeout", upstream_message="upstream timed out")
    msg = "connection to the provider failed"
    return UpstreamError(f"{msg} ({type(exc).__name__})", model=model, kind="connection", upstream_message=msg)


def _malformed(model: str, what: str) -> UpstreamError:
    msg = "the provider sent malformed JSON"
    return UpstreamError(f"{msg} ({what})", model=model, kind="malformed", upstream_message=msg)


def _completion(response: httpx.Response, model: str) -> RawCompletion:
    body = response.content
    try:
        data = json.loads(body)
    except ValueError:
        raise _malformed(model, "answer") from None
    if not isinstance(data, dict):
        raise _malformed(model, "answer is not an object")
    return RawCompletion(data, body)


def _event_chunk(data_text: str, event: str | None, model: str) -> RawChunk | None:
    """The chunk of one event; None at ``[DONE]``. Raises for error events and bad JSON."""
    if data_text.startswith("[DONE]"):
        return None
    try:
        data = json.loads(data_text)
    except ValueError:
        raise _malformed(model, "stream event") from None
    if isinstance(data, dict) and (data.get("error") or event == "error"):
        err = data.get("error", data)
        msg = provider_message(err if isinstance(err, Mapping) else None, "An error occurred during streaming")
        raise UpstreamError(f"error event: {msg}", model=model, kind="stream_error", upstream_message=msg)
    if not isinstance(data, dict):
        raise _malformed(model, "stream event is not an object")
    return RawChunk(data, data_text)


class _ClientPool:
    """Single-connection ``httpx.AsyncClient`` objects, one per request in flight, kept for reuse.

    Why not one client with a large pool: httpcore 1.x's pool can hand one idle connection to
    several waiting requests (all but one then retry) and probes every idle socket on each
    request; at 32 concurrent requests that cost 2.6 ms CPU per request against 1.1 ms here
    (BENCHMARKS.md). A client that only ever carries one request avoids both."""

    def __init__(self, timeout: float, ssl_context: Any, keep: int = 1000):
        self._timeout, self._ssl, self._keep = timeout, ssl_context, keep
        self._free: list[httpx.AsyncClient] = []
        self._closed = False

    def take(self) -> httpx.AsyncClient:
        if self._free:
            return self._free.pop()
        return httpx.AsyncClient(limits=_ONE, timeout=self._timeout, verify=self._ssl)

    def give(self, client: httpx.AsyncClient) -> None:
        """Return ``client`` (its request is over: answered, failed or cancelled)."""
        if self._closed or len(self._free) >= self._keep:
            _close_later(client)
        else:
            self._free.append(client)

    async def aclose(self) -> None:
        self._closed = True
        free, self._free = self._free, []
        for c in free:
            await c.aclose()


def _close_later(client: httpx.AsyncClient) -> None:
    task = asyncio.get_running_loop().create_task(client.aclose())
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)


_CLOSING: set[asyncio.Task[None]] = set()
_ONE = httpx.Limits(max_connections=1, max_keepalive_connections=1)


class _SyncStream:
    __slots__ = ("_response", "_model")

    def __init__(self, response: httpx.Response, model: str):
        self._response, self._model = response, model

    def __iter__(self) -> Iterator[RawChunk]:
        dec, model, response = SSEDecoder(), self._model, self._response
        parts = response.iter_bytes()
        try:
            for part in parts:
                for sse in dec.feed(part):
                    chunk = _event_chunk(sse.data, sse.event, model)
                    if chunk is None:
                        for _ in parts:  # read to the end: the connection is reused
                            pass
                        return
                    yield chunk
            for sse in dec.flush():  # the body ended without [DONE]
                chunk = _event_chunk(sse.data, sse.event, model)
                if chunk is None:
                    return
                yield chunk
        except httpx.HTTPError as exc:
            raise _transport_error(exc, model) from exc
        finally:
            response.close()

    def close(self) -> None:
        self._response.close()


class _AsyncStream:
    __slots__ = ("_response", "_model", "_release")

    def __init__(self, response: httpx.Response, model: str, release: Any):
        self._response, self._model, self._release = response, model, release

    async def _done(self) -> None:
        try:
            await self._response.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()

    async def __aiter__(self) -> AsyncIterator[RawChunk]:
        dec, model, response = SSEDecoder(), self._model, self._response
        parts = response.aiter_bytes()
        try:
            async for part in parts:
                for sse in dec.feed(part):
                    chunk = _event_chunk(sse.data, sse.event, model)
                    if chunk is None:
                        async for _ in parts:  # read to the end: the connection is reused
                            pass
                        return
                    yield chunk
            for sse in dec.flush():  # the body ended without [DONE]
                chunk = _event_chunk(sse.data, sse.event, model)
                if chunk is None:
                    return
                yield chunk
        except httpx.HTTPError as exc:
            raise _transport_error(exc, model) from exc
        finally:
            await self._done()

    async def aclose(self) -> None:
        await self._done()


class RawTransport:
    """Chat completions over httpx (``POST {base_url}/chat/completions``), one connection pool
    per endpoint (and per event loop for async calls). ``timeout``: seconds per attempt when a
    call gives none; ``headers``: extra headers sent with every request.

    ``http_client`` / ``async_http_client`` (optional): an ``httpx.Client`` /
    ``httpx.AsyncClient`` to use for every endpoint (tests, proxies, custom TLS); they are not
    closed by :meth:`close`.
    """

    def __init__(self, *, timeout: float = 60.0, headers: Mapping[str, str] | None = None,
                 http_client: httpx.Client | None = None, async_http_client: httpx.AsyncClient | None = None):
        self.timeout = float(timeout)
        self._headers = {"user-agent": _USER_AGENT, "content-type": "application/json",
                         "accept": "application/json", **dict(headers or {})}
        self._http = http_client
        self._ahttp = async_http_client
        self._lock = threading.Lock()
        self._sync: dict[str, httpx.Client] = {}
        self._async: weakref.WeakKeyDictionary[Any, _ClientPool] = weakref.WeakKeyDictionary()
        self._ssl: Any = None
        self._prepared: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}

    # -- plumbing ----------------------------------------------------------------------------
    def _target(self, endpoint: Endpoint) -> tuple[str, dict[str, str]]:
        key = endpoint.key()
        ck = (endpoint.base_url, key)
        t = self._prepared.get(ck)
        if t is None:
            url = endpoint.base_url.rstrip("/") + "/chat/completions"
            t = self._prepared.setdefault(ck, (url, {**self._headers, "authorization": f"Bearer {key}"}))
        return t

    def _pool(self) -> httpx.Client:
        if self._http is not None:
            return self._http
        c = self._sync.get("*")
        if c is None:
            with self._lock:
                c = self._sync.get("*")
                if c is None:
                    c = self._sync["*"] = httpx.Client(limits=_LIMITS, timeout=self.timeout)
        return c

    def _apool(self) -> _ClientPool:
        loop = asyncio.get_running_loop()
        pool = self._async.get(loop)
        if pool is None:
            with self._lock:
                if self._ssl is None:  # built once: a context per client would cost ~80 ms each
                    self._ssl = httpx.create_ssl_context()
                pool = self._async.setdefault(loop, _ClientPool(self.timeout, self._ssl))
        return pool

    def _request(self, http: httpx.Client | httpx.AsyncClient, call: ChatCall) -> httpx.Request:
        url, headers = self._target(call.endpoint)
        timeout = call.timeout if call.timeout is not None else self.timeout
        return http.build_request("POST", url, content=request_body(call.params), headers=headers, timeout=timeout)

    # -- sync --------------------------------------------------------------------------------
    def _send(self, call: ChatCall, stream: bool) -> httpx.Response:
        http = self._pool()
        request = self._request(http, call)
        try:
            response = http.send(request, stream=stream)
            if not 200 <= response.status_code < 300:
                try:
                    response.read()
                finally:
                    response.close()
                raise _status_error(response, call.model)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, call.model) from exc
        return response

    def complete(self, call: ChatCall) -> RawCompletion:
        return _completion(self._send(call, False), call.model)

    def stream(self, call: ChatCall) -> _SyncStream:
        return _SyncStream(self._send(call, True), call.model)

    # -- async -------------------------------------------------------------------------------
    async def _asend(self, http: httpx.AsyncClient, call: ChatCall, stream: bool) -> httpx.Response:
        request = self._request(http, call)
        try:
            response = await http.send(request, stream=stream)
            if not 200 <= response.status_code < 300:
                try:
                    await response.aread()
                finally:
                    await response.aclose()
                raise _status_error(response, call.model)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, call.model) from exc
        return response

    async def acomplete(self, call: ChatCall) -> RawCompletion:
        if self._ahttp is not None:
            return _completion(await self._asend(self._ahttp, call, False), call.model)
        pool = self._apool()
        http = pool.take()
        try:
            return _completion(await self._asend(http, call, False), call.model)
        finally:
            pool.give(http)

    async def astream(self, call: ChatCall) -> _AsyncStream:
        if self._ahttp is not None:
            return _AsyncStream(await self._asend(self._ahttp, call, True), call.model, None)
        pool = self._apool()
        http = pool.take()
        try:
            response = await self._asend(http, call, True)
        except BaseException:
            pool.give(http)
            raise
        return _AsyncStream(response, call.model, lambda: pool.give(http))

    # -- the gateway's JSON ------------------------------------------------------------------
    def completion_json(self, completion: RawCompletion) -> bytes:
        return completion.json_bytes()

    def chunk_json(self, chunk: RawChunk) -> bytes:
        return chunk.text.encode()

    def error_chunk(self, *, id: str, created: int, model: str, error: dict[str, Any]) -> RawChunk:
        data = {"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [],
                "error": error}
        return RawChunk(data, json.dumps({"error": error}, ensure_ascii=False))

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            built = list(self._sync.values())
            self._sync.clear()
        for c in built:
            c.close()

    async def aclose(self) -> None:
        """Close the async pools of the running event loop."""
        with self._lock:
            pool = self._async.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.aclose()

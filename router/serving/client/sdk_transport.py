""":class:`SDKTransport`: chat completions through the openai SDK's public API (the reference).

Answers are the SDK's ``ChatCompletion`` / ``ChatCompletionChunk`` objects; its exceptions are
mapped to :class:`~router.errors.UpstreamError` here, so the rest of the client never sees them.
One SDK client per endpoint (and per event loop for async ones), built without the SDK's own
retries (the routed client retries); or the injected ``clients`` / ``async_clients`` (model name
-> ``openai.OpenAI`` / ``openai.AsyncOpenAI``, ``"*"`` for any model).
"""

from __future__ import annotations

import asyncio
import json
import threading
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from ...errors import UpstreamError
from .failures import provider_message, retry_after
from .transport import ChatCall, Endpoint

__all__ = ["SDKTransport", "map_sdk_error"]


def map_sdk_error(exc: Exception, model: str) -> UpstreamError | None:
    """The :class:`UpstreamError` for an exception of the openai SDK (or its HTTP layer);
    ``None`` for anything else (a bug, re-raised as it is)."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return UpstreamError("upstream timed out", model=model, kind="timeout", upstream_message="upstream timed out")
    if isinstance(exc, openai.APIStatusError):
        s = int(exc.status_code)
        msg = provider_message(exc.body, str(exc.message or exc))
        return UpstreamError(f"HTTP {s}: {msg}", status_code=s, model=model, kind="status",
                             retry_after=retry_after(exc.response.headers), upstream_message=msg)
    if isinstance(exc, openai.APIConnectionError):
        msg = "connection to the provider failed"
        return UpstreamError(msg, model=model, kind="connection", upstream_message=msg)
    if isinstance(exc, (json.JSONDecodeError, openai.APIResponseValidationError)):
        msg = "the provider sent malformed JSON"
        return UpstreamError(msg, model=model, kind="malformed", upstream_message=msg)
    if isinstance(exc, openai.APIError):  # an error event inside a stream
        msg = provider_message(exc.body, str(exc.message or exc))
        return UpstreamError(f"error event: {msg}", model=model, kind="stream_error", upstream_message=msg)
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        msg = str(exc) or type(exc).__name__
        return UpstreamError(msg, model=model, kind="connection", upstream_message=msg)
    try:  # a transport failure the SDK let through while a stream was read
        import httpx2
    except ImportError:  # pragma: no cover - an SDK built on another HTTP client
        return None
    if isinstance(exc, httpx2.HTTPError):
        msg = type(exc).__name__
        return UpstreamError(f"connection error ({msg})", model=model, kind="connection", upstream_message=msg)
    return None


def _mapped(exc: Exception, model: str) -> Exception:
    err = map_sdk_error(exc, model)
    return exc if err is None else err


class _SyncStream:
    __slots__ = ("_stream", "_model")

    def __init__(self, stream: Any, model: str):
        self._stream, self._model = stream, model

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self._stream
        except Exception as exc:
            err = map_sdk_error(exc, self._model)
            if err is None:
                raise
            raise err from exc

    def close(self) -> None:
        self._stream.close()


class _AsyncStream:
    __slots__ = ("_stream", "_model")

    def __init__(self, stream: Any, model: str):
        self._stream, self._model = stream, model

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            async for chunk in self._stream:
                yield chunk
        except Exception as exc:
            err = map_sdk_error(exc, self._model)
            if err is None:
                raise
            raise err from exc

    async def aclose(self) -> None:
        await self._stream.close()


class SDKTransport:
    """Chat completions through ``openai.OpenAI`` / ``openai.AsyncOpenAI`` (see the module
    docstring). ``timeout``: the SDK clients' default per-attempt timeout in seconds."""

    def __init__(self, *, clients: Mapping[str, Any] | None = None, async_clients: Mapping[str, Any] | None = None,
                 timeout: float = 60.0):
        self.timeout = float(timeout)
        self._injected = dict(clients or {})
        self._injected_async = dict(async_clients or {})
        self._lock = threading.Lock()
        self._sync: dict[Any, Any] = {}
        self._async: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = weakref.WeakKeyDictionary()

    def _sync_client(self, model: str, endpoint: Endpoint) -> Any:
        import openai

        injected = self._injected.get(model, self._injected.get("*"))
        ck: Any = ("injected", id(injected)) if injected is not None else (endpoint.base_url, endpoint.key())
        c = self._sync.get(ck)
        if c is None:
            with self._lock:
                c = self._sync.get(ck)
                if c is None:
                    c = (injected.with_options(max_retries=0) if injected is not None else
                         openai.OpenAI(base_url=endpoint.base_url, api_key=endpoint.key(), max_retries=0,
                                       timeout=self.timeout))
                    self._sync[ck] = c
        return c

    def _async_client(self, model: str, endpoint: Endpoint) -> Any:
        import openai

        injected = self._injected_async.get(model, self._injected_async.get("*"))
        loop = asyncio.get_running_loop()
        cache = self._async.get(loop)
        if cache is None:
            with self._lock:
                cache = self._async.setdefault(loop, {})
        ck: Any = ("injected", id(injected)) if injected is not None else (endpoint.base_url, endpoint.key())
        c = cache.get(ck)
        if c is None:
            c = cache.setdefault(ck, injected.with_options(max_retries=0) if injected is not None else
                                 openai.AsyncOpenAI(base_url=endpoint.base_url, api_key=endpoint.key(),
                                                    max_retries=0, timeout=self.timeout))
        return c

    def _kwargs(self, call: ChatCall) -> dict[str, Any]:
        kw = dict(call.params)
        if call.timeout is not None:
            kw["timeout"] = call.timeout
        return kw

    def complete(self, call: ChatCall) -> Any:
        try:
            return self._sync_client(call.model, call.endpoint).chat.completions.create(**self._kwargs(call))
        except UpstreamError:
            raise
        except Exception as exc:
            raise _mapped(exc, call.model) from exc

    def stream(self, call: ChatCall) -> _SyncStream:
        return _SyncStream(self.complete(call), call.model)

    async def acomplete(self, call: ChatCall) -> Any:
        try:
            client = self._async_client(call.model, call.endpoint)
            return await client.chat.completions.create(**self._kwargs(call))
        except UpstreamError:
            raise
        except Exception as exc:
            raise _mapped(exc, call.model) from exc

    async def astream(self, call: ChatCall) -> _AsyncStream:
        return _AsyncStream(await self.acomplete(call), call.model)

    # -- the gateway's JSON ------------------------------------------------------------------
    def completion_json(self, completion: Any) -> bytes:
        return completion.model_dump_json(exclude_unset=True, exclude={"router"}).encode()

    def chunk_json(self, chunk: Any) -> bytes:
        extra = chunk.model_extra or {}
        if "error" in extra and not chunk.choices:
            return json.dumps({"error": extra["error"]}, ensure_ascii=False).encode()
        return chunk.model_dump_json(exclude_unset=True).encode()

    def error_chunk(self, *, id: str, created: int, model: str, error: dict[str, Any]) -> Any:
        from openai.types.chat import ChatCompletionChunk

        return ChatCompletionChunk.model_construct(id=id, object="chat.completion.chunk", created=created,
                                                   model=model, choices=[], error=error)

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the SDK clients built here (injected ones stay open)."""
        with self._lock:
            built = [c for k, c in self._sync.items() if k[0] != "injected"]
            self._sync.clear()
        for c in built:
            c.close()

    async def aclose(self) -> None:
        """Close the async SDK clients built in the running event loop."""
        with self._lock:
            cache = self._async.pop(asyncio.get_running_loop(), {})
        for k, c in cache.items():
            if k[0] != "injected":
                await c.close()

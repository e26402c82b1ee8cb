"""The sync and async drivers: perform the machine's actions (call a model through the
transport, sleep, route a fallback) until it returns ``(model, answer)``.

The async driver bounds each call by the request's deadline (the transport's timeout bounds
each read, not the whole answer), and routes fallbacks in a worker thread unless ``light`` (the
regex router on a small prompt: cheaper than the thread hop)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Generator
from typing import Any

from ...errors import UpstreamError
from .failures import redact_values
from .machine import Call, Result, Route, Sleep, Work
from .providers import Providers
from .streams import Opened, open_async, open_sync
from .transport import ChatCall, ChatTransport

__all__ = ["drive_sync", "drive_async"]

log = logging.getLogger("router.serving.client")


def _close_quietly(close: Callable[[], Any]) -> None:
    try:
        close()
    except Exception:  # the attempt already failed; a failing close only loses the connection
        log.debug("closing a failed stream failed", exc_info=True)


def _chat_call(call: Call, providers: Providers) -> ChatCall:
    return ChatCall(call.model, call.params, providers.endpoint(call.model), call.timeout)


def _scrubbed(exc: Exception, call: Call, providers: Providers) -> Exception:
    """``exc`` with the endpoint's key value removed from its messages (providers quote keys)."""
    if not isinstance(exc, UpstreamError):
        return exc
    try:
        key = providers.endpoint(call.model).api_key
    except Exception:  # no endpoint: nothing to scrub
        return exc
    if not key:
        return exc
    msg, up = redact_values(str(exc), (key,)), redact_values(exc.upstream_message, (key,))
    if msg == str(exc) and up == exc.upstream_message:
        return exc
    return UpstreamError(msg, status_code=exc.status_code, model=exc.model, kind=exc.kind,
                         retry_after=exc.retry_after, upstream_message=up, request_id=exc.request_id,
                         chain=exc.chain)


def _scrub_later(opened: Opened, call: Call, providers: Providers) -> Opened:
    """``opened``, whose later failures (an error event mid-stream) get scrubbed of the key."""
    opened.scrub = lambda exc: _scrubbed(exc, call, providers)
    return opened


def _perform_sync(call: Call, transport: ChatTransport, providers: Providers) -> Result:
    t0 = time.perf_counter()
    stream = None
    try:
        cc = _chat_call(call, providers)
        if call.stream:
            stream = transport.stream(cc)
            out: Any = _scrub_later(open_sync(stream), call, providers)
        else:
            out = transport.complete(cc)
        return Result(True, out, latency_ms=(time.perf_counter() - t0) * 1000.0)
    except Exception as exc:
        if stream is not None:
            _close_quietly(stream.close)
        return Result(False, error=_scrubbed(exc, call, providers), latency_ms=(time.perf_counter() - t0) * 1000.0)


def drive_sync(gen: Generator[Any, Any, Any], transport: ChatTransport, providers: Providers,
               sleep: Callable[[float], Any]) -> Any:
    try:
        action = next(gen)
        while True:
            if isinstance(action, Sleep):
                if action.seconds > 0:
                    sleep(action.seconds)
                action = gen.send(None)
            elif isinstance(action, Work):
                action = gen.send(action.fn(*action.args))
            elif isinstance(action, Route):
                action = gen.send(action.perform())
            else:
                action = gen.send(_perform_sync(action, transport, providers))
    except StopIteration as stop:
        return stop.value


async def _perform_async(call: Call, transport: ChatTransport, providers: Providers) -> Result:
    t0 = time.perf_counter()
    stream = None
    try:
        cc = _chat_call(call, providers)
        async with asyncio.timeout(call.timeout):  # the whole answer (or a stream's first output)
            if call.stream:
                stream = await transport.astream(cc)
                out: Any = _scrub_later(await open_async(stream), call, providers)
            else:
                out = await transport.acomplete(cc)
        return Result(True, out, latency_ms=(time.perf_counter() - t0) * 1000.0)
    except BaseException as exc:
        if isinstance(exc, TimeoutError):
            exc = UpstreamError("upstream timed out", model=call.model, kind="timeout",
                                upstream_message="upstream timed out")
        if stream is not None:
            try:
                await stream.aclose()
            except Exception:  # the attempt already failed; a failing close only loses the connection
                log.debug("closing a failed stream failed", exc_info=True)
        if not isinstance(exc, Exception):  # cancellation: the stream is closed, the caller decides
            raise
        return Result(False, error=_scrubbed(exc, call, providers), latency_ms=(time.perf_counter() - t0) * 1000.0)


async def drive_async(gen: Generator[Any, Any, Any], transport: ChatTransport, providers: Providers,
                      sleep: Callable[[float], Any], light: bool = True) -> Any:
    try:
        action = next(gen)
        while True:
            if isinstance(action, Sleep):
                if action.seconds > 0:
                    await sleep(action.seconds)
                action = gen.send(None)
            elif isinstance(action, Work):  # CPU work (scoring answers): keep the event loop free
                action = gen.send(await asyncio.to_thread(action.fn, *action.args))
            elif isinstance(action, Route):
                if light:
                    action = gen.send(action.perform())
                else:  # a learned router embeds: keep the event loop free
                    action = gen.send(await asyncio.to_thread(action.perform))
            else:
                action = gen.send(await _perform_async(action, transport, providers))
    except StopIteration as stop:
        return stop.value

"""The sync and async drivers: perform the machine's actions (call a model through the
transport, sleep) until it returns ``(model, answer)``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Generator
from typing import Any

from .machine import Call, Result, Sleep, Work
from .providers import Providers
from .streams import open_async, open_sync
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


def _perform_sync(call: Call, transport: ChatTransport, providers: Providers) -> Result:
    t0 = time.perf_counter()
    stream = None
    try:
        cc = _chat_call(call, providers)
        if call.stream:
            stream = transport.stream(cc)
            out: Any = open_sync(stream)
        else:
            out = transport.complete(cc)
        return Result(True, out, latency_ms=(time.perf_counter() - t0) * 1000.0)
    except Exception as exc:
        if stream is not None:
            _close_quietly(stream.close)
        return Result(False, error=exc, latency_ms=(time.perf_counter() - t0) * 1000.0)


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
            else:
                action = gen.send(_perform_sync(action, transport, providers))
    except StopIteration as stop:
        return stop.value


async def _perform_async(call: Call, transport: ChatTransport, providers: Providers) -> Result:
    t0 = time.perf_counter()
    stream = None
    try:
        cc = _chat_call(call, providers)
        if call.stream:
            stream = await transport.astream(cc)
            out: Any = await open_async(stream)
        else:
            out = await transport.acomplete(cc)
        return Result(True, out, latency_ms=(time.perf_counter() - t0) * 1000.0)
    except BaseException as exc:
        if stream is not None:
            try:
                await stream.aclose()
            except Exception:  # the attempt already failed; a failing close only loses the connection
                log.debug("closing a failed stream failed", exc_info=True)
        if not isinstance(exc, Exception):  # cancellation: the stream is closed, the caller decides
            raise
        return Result(False, error=exc, latency_ms=(time.perf_counter() - t0) * 1000.0)


async def drive_async(gen: Generator[Any, Any, Any], transport: ChatTransport, providers: Providers,
                      sleep: Callable[[float], Any]) -> Any:
    try:
        action = next(gen)
        while True:
            if isinstance(action, Sleep):
                if action.seconds > 0:
                    await sleep(action.seconds)
                action = gen.send(None)
            elif isinstance(action, Work):  # CPU work (scoring answers): keep the event loop free
                action = gen.send(await asyncio.to_thread(action.fn, *action.args))
            else:
                action = gen.send(await _perform_async(action, transport, providers))
    except StopIteration as stop:
        return stop.value

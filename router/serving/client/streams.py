"""Stream bookkeeping: open a stream up to its first meaningful chunk (what commits it to its
model: failures before it are retried like any other), then hand the chunks to the caller while
tallying text and usage, and log the request once when the stream ends, breaks or is abandoned."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ...errors import UpstreamError
from ...text.request import estimate_tokens
from .failures import classify
from .machine import Machine
from .options import RequestState
from .records import log_request, meta
from .transport import ChatTransport

__all__ = ["RoutedStream", "AsyncRoutedStream", "Opened", "Tally", "meaningful", "open_sync", "open_async",
           "sync_chunks", "async_chunks"]

log = logging.getLogger("router.serving.client")


def meaningful(chunk: Any) -> bool:
    """Whether a stream chunk carries output (content, tool call, refusal, finish reason, usage)."""
    if chunk.usage is not None:
        return True
    for ch in chunk.choices or ():
        if ch.finish_reason is not None:
            return True
        d = ch.delta
        if d is not None and (d.content or d.tool_calls or d.function_call or d.refusal
                              # a provider extension (DeepSeek's reasoning), absent from the SDK's type
                              or getattr(d, "reasoning_content", None)):
            return True
    return False


@dataclass
class Opened:
    """A stream whose first meaningful chunk has arrived (or that ended before one)."""

    stream: Any
    iterator: Any
    buffered: list[Any]
    done: bool
    #: applied to a failure while the rest is read (the driver scrubs the endpoint's key)
    scrub: Callable[[Exception], Exception] | None = None


def open_sync(stream: Any) -> Opened:
    it = iter(stream)
    buffered: list[Any] = []
    for chunk in it:
        buffered.append(chunk)
        if meaningful(chunk):
            return Opened(stream, it, buffered, False)
    return Opened(stream, it, buffered, True)


async def open_async(stream: Any) -> Opened:
    it = stream.__aiter__()
    buffered: list[Any] = []
    async for chunk in it:
        buffered.append(chunk)
        if meaningful(chunk):
            return Opened(stream, it, buffered, False)
    return Opened(stream, it, buffered, True)


class Tally:
    """Shared bookkeeping of one routed stream: text, usage, the final log record."""

    def __init__(self, machine: Machine, transport: ChatTransport, st: RequestState, model: str,
                 meta_: dict[str, Any]):
        self.machine, self.transport, self.st, self.model, self.meta = machine, transport, st, model, meta_
        self.parts: list[str] = []
        self.usage: Any = None
        self.finished = False  # a finish_reason was seen
        self.logged = False
        self.last: Any = None

    def see(self, chunk: Any) -> bool:
        """Record ``chunk``; whether the caller should get it."""
        self.last = chunk
        u = chunk.usage
        if u is not None:
            self.usage = u
        choices = chunk.choices or ()
        for ch in choices:
            if ch.delta is not None and ch.delta.content:
                self.parts.append(ch.delta.content)
            if ch.finish_reason is not None:
                self.finished = True
        if u is not None and not choices and not self.st.caller_usage:
            return False  # the usage chunk we asked for on the caller's behalf
        return True

    def error_chunk(self, exc: BaseException) -> Any:
        f = classify(exc)
        last = self.last
        err = {"message": f"the stream from {self.model} broke after it started: {f.message or f.reason}",
               "type": "upstream_error", "param": None, "code": f.kind}
        return self.transport.error_chunk(
            id=(last.id if last is not None else None) or self.st.request_id,
            created=(last.created if last is not None else None) or int(time.time()),
            model=(last.model if last is not None else None) or self.model, error=err)

    def finish(self, status: str, error: str | None = None) -> None:
        if self.logged:
            return
        self.logged = True
        try:
            st = self.st
            if status == "cancelled" and self.finished:
                status = "ok"
            if self.usage is not None and self.usage.prompt_tokens is not None:
                pt, ct = int(self.usage.prompt_tokens or 0), int(self.usage.completion_tokens or 0)
            else:
                pt, ct = st.parsed.prompt_tokens, estimate_tokens("".join(self.parts))
            st.cost += self.machine.catalog[self.model].cost(pt, ct)
            if status != "ok":
                for e in reversed(st.chain):
                    if e["model"] == self.model and e["status"] == "ok":
                        e.update(status=status, reason=error or status)
                        break
            self.meta.update(meta(st, self.model, st.cost))
            self.meta["status"] = status
            st.answer = "".join(self.parts)
            log_request(self.machine.usage, st, self.model, status, error, pt, ct, self.meta["latency_ms"])
        except Exception:
            log.warning("stream bookkeeping failed", exc_info=True)


def _failed(exc: Exception) -> str:
    f = classify(exc)
    return f.message or type(exc).__name__


def sync_chunks(opened: Opened, tally: Tally) -> Iterator[Any]:
    status, error = "cancelled", None
    try:
        for c in opened.buffered:
            if tally.see(c):
                yield c
        if not opened.done:
            try:
                for c in opened.iterator:
                    if tally.see(c):
                        yield c
            except Exception as exc:
                if classify(exc).kind == "bug":
                    raise
                if opened.scrub is not None:
                    exc = opened.scrub(exc)
                status, error = "error", _failed(exc)
                yield tally.error_chunk(exc)
                return
        status = "ok"
    finally:
        try:
            opened.stream.close()
        except Exception:  # the answer is complete; a failing close only loses the connection
            log.debug("closing a finished stream failed", exc_info=True)
        finally:
            tally.finish(status, error)


class _Stall:
    """Bounds the wait for each chunk to ``gap`` seconds with one timer per stream (an
    ``asyncio.timeout`` per chunk cost ~15 us each): when it fires while the stream waits for a
    chunk, it cancels the waiting task, which :func:`async_chunks` turns into a stall error."""

    def __init__(self, gap: float):
        self.gap = gap
        self.loop = asyncio.get_running_loop()
        self.since = self.loop.time()
        self.task: asyncio.Task[Any] | None = None
        self._fired = False
        self.handle = self.loop.call_at(self.since + gap, self._check)

    def waiting(self) -> None:
        self.since = self.loop.time()
        self.task = asyncio.current_task()

    def _check(self) -> None:
        now = self.loop.time()
        if self.task is not None and now - self.since >= self.gap:
            self._fired = True
            self.task.cancel()
            return
        self.handle = self.loop.call_at((self.since if self.task is not None else now) + self.gap, self._check)

    def fired(self) -> bool:
        """Whether the cancellation is the stall's (then it is taken back from the task)."""
        if not self._fired:
            return False
        self._fired = False
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        return True

    def stop(self) -> None:
        self.handle.cancel()


async def async_chunks(opened: Opened, tally: Tally) -> AsyncIterator[Any]:
    status, error = "cancelled", None
    stall: _Stall | None = None
    try:
        for c in opened.buffered:
            if tally.see(c):
                yield c
        if not opened.done:
            gap, it = tally.st.deadline, opened.iterator
            stall = _Stall(gap) if gap is not None else None
            try:
                while True:
                    try:
                        if stall is not None:
                            stall.waiting()
                        c = await it.__anext__()
                    except StopAsyncIteration:
                        break
                    except asyncio.CancelledError:
                        if stall is None or not stall.fired():
                            raise
                        raise UpstreamError(f"the stream from {tally.model} stalled: no chunk for {gap:g} s",
                                            model=tally.model, kind="timeout",
                                            upstream_message=f"it stalled: no chunk for {gap:g} s") from None
                    finally:
                        if stall is not None:
                            stall.task = None
                    if tally.see(c):
                        yield c
            except Exception as exc:
                if classify(exc).kind == "bug":
                    raise
                if opened.scrub is not None:
                    exc = opened.scrub(exc)
                status, error = "error", _failed(exc)
                yield tally.error_chunk(exc)
                return
        status = "ok"
    finally:
        if stall is not None:
            stall.stop()
        try:
            await opened.stream.aclose()
        except Exception:  # a failing close only loses the connection; cancellation propagates
            log.debug("closing a finished stream failed", exc_info=True)
        finally:
            tally.finish(status, error)


class RoutedStream:
    """An iterator of chunks from the routed model (``ChatCompletionChunk`` with the SDK
    transport). ``router`` holds the routing metadata (``cost_usd`` and ``status`` are filled in
    when the stream ends)."""

    def __init__(self, gen: Iterator[Any], meta_: dict[str, Any]):
        self._gen = gen
        self.router = meta_

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()  # type: ignore[attr-defined]

    def __enter__(self) -> RoutedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRoutedStream:
    """The async twin of :class:`RoutedStream`."""

    def __init__(self, gen: AsyncIterator[Any], meta_: dict[str, Any]):
        self._gen = gen
        self.router = meta_

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        await self._gen.aclose()  # type: ignore[attr-defined]

    close = aclose

    async def __aenter__(self) -> AsyncRoutedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

"""Request bodies the gateway accepts: strict JSON, bounded, and safe to forward.

:func:`parse_json` turns the body's bytes (already within the size limit: the limit is applied
while reading, before any parsing) into a value, raising :class:`InvalidRequestError` with a clear
message for what would otherwise fail later with a 500:

* ``NaN`` / ``Infinity`` (Python's ``json`` accepts them; they are not JSON, and forwarded they
  make the provider's request invalid);
* nesting deeper than :data:`MAX_DEPTH` (``json`` raises ``RecursionError`` near 1,000 levels,
  and a body just under that breaks re-encoding it upstream);
* a lone UTF-16 surrogate (``"\\ud800"``): not Unicode, it cannot be encoded for the provider,
  nor hashed for the usage log.

The checks cost nothing on ordinary bodies: the depth scan runs only when the body has more than
:data:`MAX_DEPTH` opening brackets, the surrogate check only when an escaped surrogate occurs.
:func:`cancel_on_disconnect` runs the gateway's work for a request and cancels it when the caller
hangs up.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import numpy as np

from ...errors import InvalidRequestError

__all__ = ["parse_json", "json_depth", "until_disconnected", "cancel_on_disconnect", "MAX_DEPTH", "INVALID_JSON"]

#: The deepest nesting of arrays and objects accepted (a chat request needs about 6).
MAX_DEPTH = 64
#: OpenAI's message for a body that is not JSON.
INVALID_JSON = ("We could not parse the JSON body of your request. (HINT: this likely means you aren't using "
                "your HTTP library correctly.)")

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_OPEN = np.zeros(256, np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def _reject_constant(name: str) -> Any:
    raise InvalidRequestError(f"the JSON body holds {name}, which is not JSON: numbers must be finite")


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in the JSON text ``raw`` (strings skipped)."""
    bare = _STRING.sub(b"", raw)
    if not bare:
        return 0
    steps = _OPEN[np.frombuffer(bare, np.uint8)].astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


def parse_json(raw: bytes) -> Any:
    """The JSON value of ``raw``; :class:`InvalidRequestError` for malformed JSON, ``NaN`` /
    ``Infinity``, nesting deeper than :data:`MAX_DEPTH` and lone surrogates."""
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and json_depth(raw) > MAX_DEPTH:
        raise InvalidRequestError(f"the JSON body is nested more than {MAX_DEPTH} levels deep")
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:  # pragma: no cover - the depth scan refuses these first
        raise InvalidRequestError(f"the JSON body is nested more than {MAX_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, InvalidRequestError):
            raise
        raise InvalidRequestError(INVALID_JSON) from None
    if _ESCAPED_SURROGATE.search(raw):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequestError("the JSON body holds a lone UTF-16 surrogate (e.g. \\ud800) in a string: "
                                      "send valid Unicode") from None
    return value


async def until_disconnected(receive: Any) -> None:
    """Return when the ASGI ``receive`` says the caller disconnected (call it after the body
    was read: the server then answers only ``http.disconnect``, when it happens)."""
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            return


async def cancel_on_disconnect(receive: Any, work: Any, grace: float = 1.0) -> Any:
    """Await ``work()``; cancel it (the upstream call included) when the caller hangs up (the
    routed client then logs the row as ``cancelled``). ``None`` when cancelled.

    The watch on ``receive`` starts only after ``grace`` seconds: a request answered sooner pays
    for a timer, not for a task (a task group per request cost ~0.5 ms CPU; a watch task started
    after 50 ms still cost ~15% CPU at 32 clients, whose queued requests pass 50 ms). A caller
    gone before then is seen at once when the watch starts: an LLM call is cancelled at most
    ``grace`` seconds late."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    state: dict[str, Any] = {"watch": None, "ours": False, "done": False}

    def disconnected(fut: asyncio.Future[Any]) -> None:
        if not state["done"] and not fut.cancelled() and fut.exception() is None:
            state["ours"] = True
            task.cancel()

    def start_watch() -> None:
        watch = state["watch"] = loop.create_task(until_disconnected(receive))
        watch.add_done_callback(disconnected)

    timer = loop.call_later(grace, start_watch)
    try:
        return await work()
    except asyncio.CancelledError:
        if state["ours"] and task.uncancel() == 0:
            return None
        raise
    finally:
        state["done"] = True
        timer.cancel()
        if state["watch"] is not None:
            state["watch"].cancel()

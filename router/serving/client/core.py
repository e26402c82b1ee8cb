"""``RoutedClient``: an OpenAI-SDK-shaped client that routes, retries, falls back and logs.

::

    from ... import Router, RoutedClient

    client = RoutedClient(Router.default(), usage=UsageStore("sqlite:///router_usage.db"))
    r = client.chat.completions.create(model="auto:budget", messages=[...])
    r.choices[0].message.content, r.router["model"], r.router["cost_usd"]

    for chunk in client.chat.completions.create(model="auto", messages=[...], stream=True):
        ...                                   # openai ChatCompletionChunk objects

``model`` is ``"auto"`` (the router's default tier), ``"auto:budget|balanced|quality"``, or a
catalog model / alias (passed through, no routing). Routing constraints come from extra keyword
arguments or ``extra_body={"router": {...}}`` (``max_cost``, ``min_quality``, ``max_quality_gap``,
``tier``, ``escalate``); they are never sent upstream. Parameters the SDK does not know are sent in
the request body (as ``extra_body``).

What happens to one request:

1. **Route** (``auto``) with the models now cooling down excluded, or resolve the named model.
2. **Adapt** the parameters to the model: drop the catalog's ``unsupported_params``, clip
   ``max_tokens`` / ``max_completion_tokens`` to ``max_output_tokens``, strip image parts for a
   model without vision (possible only when a model is named, or on fallback of a named model).
3. **Call** with a per-attempt timeout. 429 (``Retry-After`` honoured, capped), 408, 409, 5xx,
   timeouts, connection errors and malformed JSON are retried with exponential backoff and full
   jitter; 400 / 413 / 422 end the request (the request itself is wrong); other 4xx (401, 403,
   404: the model's provider is misconfigured) skip to the fallback without retrying.
4. **Fall back** when a model's retries are exhausted: re-route with the failed models excluded
   (same constraints, the policy's order). A named model falls back only with
   ``RetryPolicy(fallback_explicit=True)``. A model failing ``failure_threshold`` attempts in a
   row cools down for ``cooldown_s`` (excluded from routing; injectable ``clock``).
5. **Escalate** (non-streaming ``auto`` requests): when a check of the :class:`EscalationPolicy`
   fires on the answer, re-ask the cheapest candidate with a higher predicted quality, if the
   cost so far plus its estimated cost stays within ``max_cost``.
6. **Log** one :class:`~router.usage.UsageRecord` per request (never per attempt) with the whole
   chain; attach ``response.router`` (model, task, tier, predicted_quality, estimated_cost,
   cost_usd, chain, request_id, rule, ...). Logging never raises into the caller. Statuses:
   ``ok``, ``error`` (every model failed, or a stream broke after its first token),
   ``cancelled`` (the caller abandoned the request or the stream before its end) and
   ``rejected`` (an invalid request or unknown model: nothing was sent upstream).

Streams: a failure before the first token (content, tool call, refusal, finish reason or usage)
is retried / falls back like any other; after it, the stream ends with a final chunk whose
``error`` attribute holds an OpenAI-style error object (``{"message", "type", "code"}``), and the
request is logged with status ``"error"``.

:class:`AsyncRoutedClient` is the same for ``async``/``await``; both drive one sans-I/O core (a
generator that yields "call this model" / "sleep this long" actions), so retry, fallback,
cooldown, escalation and logging behave identically. ``RoutedClient.aio`` is an async client that
shares the sync one's cooldown state, providers and usage log.
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import json
import logging
import random
import re
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...errors import InvalidRequestError, NoEligibleModelError, RouterError, UpstreamError
from ...text.request import ParsedRequest, estimate_tokens, parse_request

__all__ = [
    "RoutedClient",
    "AsyncRoutedClient",
    "RoutedStream",
    "AsyncRoutedStream",
    "RetryPolicy",
    "EscalationPolicy",
    "code_placeholder",
    "reasoning_uncertainty",
    "DEFAULT_CHECKS",
    "AUTO_MODELS",
]

log = logging.getLogger("router.serving.client")

#: The model names that ask for routing.
AUTO_MODELS = ("auto", "auto:budget", "auto:balanced", "auto:quality")
#: Routing options a request may carry (keyword arguments or ``extra_body["router"]``).
_OPTION_KEYS = frozenset({"max_cost", "min_quality", "max_quality_gap", "tier", "escalate"})
_IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})
_FATAL_4XX = frozenset({400, 413, 422})  # the request itself is wrong: no retry, no fallback
_RETRY_4XX = frozenset({408, 409, 429})


# -- policies -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one model, then fallback to others.

    ``max_attempts`` per model (1 = no retry). Backoff before attempt ``k + 1`` is uniform in
    ``[0, min(max_delay, base_delay * 2 ** (k - 1))]`` (full jitter); a ``Retry-After`` (or
    ``retry-after-ms``) header replaces it, capped at ``max_retry_after`` seconds. At most
    ``max_fallbacks`` other models are tried after the first. ``fallback_explicit`` lets a
    request that named a model fall back to routed ones. ``stream_usage`` asks streaming
    providers for a final usage chunk (``stream_options.include_usage``) so costs are exact; it
    reaches the caller only when the caller asked for it.
    """

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0
    jitter: bool = True
    fallback: bool = True
    max_fallbacks: int = 3
    fallback_explicit: bool = False
    stream_usage: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must be >= 0")
        if self.max_fallbacks < 0:
            raise ValueError("max_fallbacks must be >= 0")

    def delay(self, attempt: int, retry_after: float | None = None,
              rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        cap = min(self.max_delay, self.base_delay * 2 ** max(attempt - 1, 0))
        if not self.jitter:
            return cap
        return (rng or random).uniform(0.0, cap)


def code_placeholder(text: str, task: str | None) -> bool:
    """The original design's code check: a code answer that still holds a TODO or a placeholder."""
    return task == "code" and ("TODO" in text or "placeholder" in text.lower())


_UNCERTAIN = ("might be wrong", "not entirely sure", "could be", "possibly")


def reasoning_uncertainty(text: str, task: str | None) -> bool:
    """The original design's reasoning check: the answer hedges ("might be wrong", "possibly"...)."""
    if task != "reasoning":
        return False
    low = text.lower()
    return any(marker in low for marker in _UNCERTAIN)


#: The original design's ``should_escalate``, as two checks.
DEFAULT_CHECKS: tuple[Callable[[str, str | None], bool], ...] = (code_placeholder, reasoning_uncertainty)


@dataclass(frozen=True)
class EscalationPolicy:
    """Re-ask a stronger model when a check fires on a (non-streaming) answer.

    ``checks`` are callables ``(response_text, task) -> bool``; a check that raises counts as not
    firing. At most ``max_escalations`` re-asks per request. The stronger model is the cheapest
    routing candidate whose predicted quality exceeds the current one by more than
    ``min_quality_gain``; it is asked only if the cost so far plus its estimated cost stays within
    the request's ``max_cost`` (when one is given).
    """

    checks: Sequence[Callable[[str, str | None], bool]] = DEFAULT_CHECKS
    max_escalations: int = 1
    min_quality_gain: float = 0.0

    def triggered(self, text: str, task: str | None) -> str | None:
        """The name of the first check that fires, else ``None``."""
        for check in self.checks:
            try:
                if check(text, task):
                    return getattr(check, "__name__", type(check).__name__)
            except Exception:  # a broken custom check must not fail the request
                log.warning("escalation check %r raised; ignored", check, exc_info=True)
        return None


# -- cooldowns ------------------------------------------------------------------------------
class _Health:
    """Consecutive failures per model; ``threshold`` in a row cools the model for ``cooldown_s``."""

    def __init__(self, threshold: int, cooldown_s: float, clock: Callable[[], float]):
        if threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.threshold, self.cooldown_s, self.clock = threshold, float(cooldown_s), clock
        self._lock = threading.Lock()
        self._fails: dict[str, int] = {}
        self._until: dict[str, float] = {}

    def cooling(self) -> frozenset[str]:
        if not self._until:
            return frozenset()
        now = self.clock()
        with self._lock:
            return frozenset(m for m, t in self._until.items() if t > now)

    def is_cooling(self, model: str) -> bool:
        t = self._until.get(model)
        return t is not None and t > self.clock()

    def success(self, model: str) -> None:
        if self._fails.get(model):
            with self._lock:
                self._fails[model] = 0

    def failure(self, model: str) -> bool:
        """Count a failure; True when it starts a cooldown."""
        with self._lock:
            n = self._fails.get(model, 0) + 1
            if n >= self.threshold:
                self._fails[model] = 0
                self._until[model] = self.clock() + self.cooldown_s
                return True
            self._fails[model] = n
            return False

    def snapshot(self) -> dict[str, dict[str, float]]:
        now = self.clock()
        with self._lock:
            names = set(self._fails) | set(self._until)
            return {m: {"consecutive_failures": self._fails.get(m, 0),
                        "cooldown_left_s": max(0.0, self._until.get(m, now) - now)} for m in sorted(names)}


# -- one request ----------------------------------------------------------------------------
@dataclass
class _State:
    request_id: str
    requested_model: str
    auto: bool
    model: str | None  # the named model (pass-through), canonical
    tier: str | None
    opts: dict[str, Any]
    params: dict[str, Any]  # what is sent upstream, before per-model adaptation
    parsed: ParsedRequest
    messages: Sequence[Any]
    max_tokens: int | None
    stream: bool
    caller_usage: bool  # the caller asked for the usage chunk
    timeout: Any
    client_tag: str | None
    raw: bool = False  # the gateway's fast path: _RawCompletion answers, _RawChunk streams
    t0: float = field(default_factory=time.perf_counter)
    created_at: float = field(default_factory=time.time)
    decision: Any = None
    chain: list[dict[str, Any]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    tried: list[str] = field(default_factory=list)
    cost: float = 0.0
    escalated: bool = False
    last: "_Failure | None" = None
    adapted: dict[str, tuple[dict[str, Any], list[str]]] = field(default_factory=dict)

    @property
    def max_cost(self) -> float | None:
        return self.opts.get("max_cost")


@dataclass
class _Call:
    model: str
    params: dict[str, Any]
    stream: bool
    timeout: Any
    raw: bool = False


def _json_view(value: Any) -> Any:
    """``value`` with JSON objects (also inside arrays) seen through :class:`_JsonView`."""
    if isinstance(value, dict):
        return _JsonView(value)
    if isinstance(value, list):
        return [_json_view(v) for v in value]
    return value


class _JsonView:
    """Attribute access over a provider's JSON object, so the bookkeeping (usage, text, chunk
    checks) reads the gateway's raw answers as it reads SDK objects: nested objects are viewed
    the same way, a missing key reads as None. ``data`` is the object itself."""

    __slots__ = ("data",)

    def __init__(self, data: dict[str, Any]):
        self.data = data

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # private and dunder lookups (copy, pickle) are not JSON keys
            raise AttributeError(name)
        return _json_view(self.data.get(name))


class _RawCompletion(_JsonView):
    """A non-streaming answer kept as the provider's JSON (the gateway's path): ``data`` is the
    parsed object, ``body`` the bytes to send back, ``router`` the routing metadata."""

    __slots__ = ("body", "router")

    def __init__(self, data: dict[str, Any], body: bytes):
        super().__init__(data)
        self.body = body
        self.router: dict[str, Any] | None = None

    def json_bytes(self) -> bytes:
        """The answer as JSON (what ``model_dump_json(exclude_unset=True, exclude={"router"})`` gives)."""
        if "router" in self.data:
            return json.dumps({k: v for k, v in self.data.items() if k != "router"}, ensure_ascii=False).encode()
        return self.body


class _RawChunk(_JsonView):
    """One event of a stream on the gateway's raw path: ``data`` the provider's JSON (parsed for
    the bookkeeping), ``text`` its exact text, forwarded as it came."""

    __slots__ = ("text",)

    def __init__(self, data: dict[str, Any], text: str):
        super().__init__(data)
        self.text = text


class _RawTarget:
    """What the raw path needs of a built ``openai.AsyncOpenAI``: its HTTP client, URL, headers,
    and, for streams, the SDK's own SSE decoder and the exception types it maps to its errors."""

    __slots__ = ("sdk", "http", "url", "headers", "sse_decoder", "timeout_errors", "request_errors", "drain")

    def __init__(self, sdk: Any):
        from openai._httpx2 import request_exceptions, timeout_exceptions
        from openai._streaming_cleanup import drain_response_async

        self.sdk = sdk
        self.http = sdk._client
        self.sse_decoder = sdk._make_sse_decoder
        self.timeout_errors, self.request_errors = timeout_exceptions(), request_exceptions()
        self.drain = drain_response_async
        self.url = str(sdk.base_url).rstrip("/") + "/chat/completions"
        hdrs: dict[str, str] = {}
        for k, v in {**sdk.auth_headers, **sdk.default_headers}.items():
            if isinstance(v, str):
                hdrs[k] = v
        hdrs["x-stainless-retry-count"] = "0"
        self.headers = hdrs


@dataclass
class _Sleep:
    seconds: float


@dataclass
class _Result:
    ok: bool
    value: Any = None
    error: BaseException | None = None
    latency_ms: float = 0.0


@dataclass
class _Opened:
    """A stream whose first meaningful chunk has arrived (or that ended before one)."""

    stream: Any
    iterator: Any
    buffered: list[Any]
    done: bool


@dataclass
class _Failure:
    kind: str  # status | timeout | connection | malformed | config | stream_error
    reason: str
    status_code: int | None = None
    retryable: bool = False
    fatal: bool = False
    counts: bool = True
    retry_after: float | None = None
    message: str = ""


class _MissingKey(Exception):
    pass


def _retry_after(headers: Any) -> float | None:
    try:
        ms = headers.get("retry-after-ms")
        if ms:
            return float(ms) / 1000.0
        ra = headers.get("retry-after")
        if not ra:
            return None
        try:
            return float(ra)
        except ValueError:
            when = email.utils.parsedate_to_datetime(ra)
            return max(0.0, when.timestamp() - time.time())
    except Exception:
        return None


_SECRETISH = re.compile(r"\b(?:sk|pk|rk|key|api[_-]?key)[-_][A-Za-z0-9_\-*.]{4,}", re.IGNORECASE)


def _redact(text: str) -> str:
    """Provider messages may quote (part of) a key, e.g. OpenAI's 401 text: mask anything key-like."""
    return _SECRETISH.sub("[redacted]", text)


def _upstream_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        inner = body.get("error") if isinstance(body.get("error"), Mapping) else body
        msg = inner.get("message")
        if isinstance(msg, str) and msg:
            return _redact(msg[:1000])
    return _redact(str(getattr(exc, "message", None) or exc)[:1000])


def _classify(exc: BaseException) -> _Failure:
    import openai

    if isinstance(exc, _MissingKey):
        return _Failure("config", str(exc), counts=False, message=str(exc))
    if isinstance(exc, openai.APITimeoutError):
        return _Failure("timeout", "timeout", retryable=True, message="upstream timed out")
    if isinstance(exc, openai.APIStatusError):
        s = int(exc.status_code)
        msg = _upstream_message(exc)
        ra = _retry_after(exc.response.headers) if s in (429, 503) else None
        if s in _RETRY_4XX or s >= 500:
            return _Failure("status", f"HTTP {s}", s, retryable=True, retry_after=ra, message=msg)
        if s in _FATAL_4XX:
            return _Failure("status", f"HTTP {s}", s, fatal=True, counts=False, message=msg)
        return _Failure("status", f"HTTP {s}", s, message=msg)
    if isinstance(exc, openai.APIConnectionError):
        return _Failure("connection", "connection error", retryable=True, message="connection to the provider failed")
    if isinstance(exc, (json.JSONDecodeError, openai.APIResponseValidationError)):
        return _Failure("malformed", "malformed response", retryable=True, message="the provider sent malformed JSON")
    if isinstance(exc, openai.APIError):  # an error event inside a stream
        return _Failure("stream_error", "error event", retryable=True, message=_upstream_message(exc))
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return _Failure("connection", "connection error", retryable=True, message=str(exc) or type(exc).__name__)
    try:
        import httpx2

        if isinstance(exc, httpx2.HTTPError):
            return _Failure("connection", "connection error", retryable=True, message=type(exc).__name__)
    except ImportError:  # pragma: no cover
        pass
    return _Failure("bug", type(exc).__name__, message=str(exc))


def _known_params() -> frozenset[str]:
    global _KNOWN
    if _KNOWN is None:
        from openai.resources.chat.completions import Completions

        _KNOWN = frozenset(p for p in inspect.signature(Completions.create).parameters if p != "self")
    return _KNOWN


_KNOWN: frozenset[str] | None = None


def _strip_images(messages: Sequence[Any]) -> list[Any]:
    out = []
    for m in messages:
        content = m.get("content") if isinstance(m, Mapping) else None
        if isinstance(content, list) and any(isinstance(p, Mapping) and p.get("type") in _IMAGE_PARTS
                                             for p in content):
            kept = [p for p in content if not (isinstance(p, Mapping) and p.get("type") in _IMAGE_PARTS)]
            m = dict(m)
            m["content"] = kept or [{"type": "text", "text": "[image omitted]"}]
        out.append(m)
    return out


def _response_text(response: Any) -> str:
    try:
        return "\n".join(c.message.content or "" for c in response.choices if c.message is not None)
    except Exception:
        return ""


def _meaningful(chunk: Any) -> bool:
    """Whether a stream chunk carries output (what commits the stream to its model)."""
    if getattr(chunk, "usage", None) is not None:
        return True
    for ch in getattr(chunk, "choices", None) or ():
        if ch.finish_reason is not None:
            return True
        d = ch.delta
        if d is not None and (d.content or d.tool_calls or d.function_call or d.refusal
                              or getattr(d, "reasoning_content", None)):
            return True
    return False


def _new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


# -- the shared, sans-I/O core --------------------------------------------------------------
class _Core:
    def __init__(self, router: Any, *, clients: Mapping[str, Any] | None, async_clients: Mapping[str, Any] | None,
                 base_url: str | None, api_key: str | None, usage: Any, retry: RetryPolicy,
                 escalation: EscalationPolicy | None, timeout: float, cooldown_s: float,
                 failure_threshold: int, clock: Callable[[], float]):
        from ... import config

        self.router = router
        self.catalog = router.catalog
        self.usage = usage
        self.retry = retry
        self.escalation = escalation
        self.timeout = timeout
        self.health = _Health(failure_threshold, cooldown_s, clock)
        self.rng = random.Random()
        self.base_url = (base_url or config.router_base_url() or None)
        self.base_url = self.base_url.rstrip("/") if self.base_url else None
        self._api_key = api_key
        self._injected = dict(clients or {})
        self._injected_async = dict(async_clients or {})
        self._sync: dict[Any, Any] = {}
        self._async: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._heavy_routing = getattr(router.classifier, "embedder", None) is not None

    # -- providers -------------------------------------------------------------------------
    def _provider(self, model: str) -> tuple[str, str, str]:
        """(cache key, base_url, api key) for ``model``; the key never leaves this method's callers."""
        from ... import config

        if self.base_url is not None:
            key = self._api_key or config.router_api_key() or "EMPTY"
            return ("*", self.base_url, key)
        spec = self.catalog[model]
        env_name = spec.provider.api_key_env
        key = config.secret(env_name)
        if key is None:
            raise _MissingKey(f"no API key: ${env_name} is not set")
        return (spec.provider.base_url + "|" + env_name, spec.provider.base_url, key)

    def sync_client(self, model: str) -> Any:
        import openai

        injected = self._injected.get(model, self._injected.get("*"))
        if injected is not None:
            ck = ("injected", id(injected))
            c = self._sync.get(ck)
            if c is None:
                with self._lock:
                    c = self._sync.setdefault(ck, injected.with_options(max_retries=0))
            return c
        ck, base, key = self._provider(model)
        c = self._sync.get(ck)
        if c is None:
            with self._lock:
                c = self._sync.get(ck)
                if c is None:
                    c = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=self.timeout)
                    self._sync[ck] = c
        return c

    def async_client(self, model: str) -> Any:
        import openai

        injected = self._injected_async.get(model, self._injected_async.get("*"))
        loop = asyncio.get_running_loop()
        cache = self._async.get(loop)
        if cache is None:
            with self._lock:
                cache = self._async.setdefault(loop, {})
        if injected is not None:
            ck = ("injected", id(injected))
            c = cache.get(ck)
            if c is None:
                c = cache.setdefault(ck, injected.with_options(max_retries=0))
            return c
        ck, base, key = self._provider(model)
        c = cache.get(ck)
        if c is None:
            c = cache.setdefault(ck, openai.AsyncOpenAI(base_url=base, api_key=key, max_retries=0,
                                                        timeout=self.timeout))
        return c

    def raw_target(self, client: Any) -> _RawTarget | None:
        """The raw path's target for an async SDK client (None: use the SDK)."""
        loop = asyncio.get_running_loop()
        cache = self._async.get(loop)
        ck = ("raw", id(client))
        t = cache.get(ck) if cache is not None else None
        if t is not None and t.sdk is client:
            return t
        import openai

        try:
            # only a plain API-key client: key providers, provider runtimes, workload identity,
            # custom auth or default query parameters keep the SDK's request machinery
            ok = (type(client) is openai.AsyncOpenAI and not client._custom_query
                  and getattr(client, "_provider_runtime", None) is None
                  and getattr(client, "_api_key_provider", None) is None
                  and getattr(client, "workload_identity", None) is None
                  and isinstance(client.api_key, str) and bool(client.auth_headers)
                  and client.custom_auth is None and hasattr(client._client, "send")
                  and callable(getattr(client, "_make_status_error_from_response", None)))
            t = _RawTarget(client) if ok else None
        except Exception:
            t = None
        if t is not None and cache is not None:
            cache[ck] = t
        return t

    def close_sync(self) -> None:
        with self._lock:
            built = [c for k, c in self._sync.items() if k[0] != "injected"]
            self._sync.clear()
        for c in built:
            try:
                c.close()
            except Exception:
                pass

    async def close_async(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover
            return
        with self._lock:
            cache = self._async.pop(loop, {})
        for k, c in cache.items():
            if k[0] not in ("injected", "raw"):
                try:
                    await c.close()
                except Exception:
                    pass

    # -- request parsing -------------------------------------------------------------------
    def start(self, kwargs: Mapping[str, Any], request_id: str | None, client_tag: str | None) -> _State:
        rid = request_id or _new_request_id()
        requested = kwargs.get("model")
        try:
            return self._parse(dict(kwargs), rid, client_tag)
        except RouterError as exc:
            self.log_rejected(rid, requested, exc, client_tag, bool(kwargs.get("stream")))
            raise

    def _parse(self, kw: dict[str, Any], rid: str, client_tag: str | None) -> _State:
        model = kw.pop("model", None)
        if not isinstance(model, str) or not model.strip():
            raise InvalidRequestError("'model' is required: a catalog model, 'auto' or 'auto:<tier>'")
        messages = kw.get("messages")
        if messages is None:
            raise InvalidRequestError("'messages' is required")
        if isinstance(messages, (str, bytes, bytearray)) or not isinstance(messages, Sequence):
            raise InvalidRequestError(f"'messages' must be a list of message objects, got {type(messages).__name__}")
        parsed = parse_request(messages)

        opts: dict[str, Any] = {}
        extra_body = kw.pop("extra_body", None)
        if extra_body is not None:
            if not isinstance(extra_body, Mapping):
                raise InvalidRequestError("extra_body must be an object")
            extra_body = dict(extra_body)
        sources = [extra_body.pop("router", None) if extra_body else None, kw.pop("router", None)]
        for src in sources:
            if src is None:
                continue
            if not isinstance(src, Mapping):
                raise InvalidRequestError("the 'router' options must be an object")
            opts.update(src)
        for k in ("max_cost", "min_quality", "max_quality_gap"):
            if k in kw:
                opts[k] = kw.pop(k)
        unknown = set(opts) - _OPTION_KEYS
        if unknown:
            raise InvalidRequestError(f"unknown router option(s) {sorted(unknown)}; known: {sorted(_OPTION_KEYS)}")
        for k in ("max_cost", "min_quality", "max_quality_gap"):
            v = opts.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise InvalidRequestError(f"router option {k} must be a number, got {v!r}")

        name = model.strip()
        auto = name == "auto" or name.startswith("auto:")
        canonical = None
        tier = opts.get("tier")
        if auto:
            if name.startswith("auto:"):
                tier = name[5:]
                if not tier:
                    raise InvalidRequestError("'auto:' needs a tier, e.g. 'auto:budget'")
            if tier is not None and tier not in self.router.policy.tiers:
                raise InvalidRequestError(f"unknown tier {tier!r}; known: {sorted(self.router.policy.tiers)}")
        else:
            canonical = self.catalog.resolve(name)  # UnknownModelError

        max_tokens = kw.get("max_completion_tokens", kw.get("max_tokens"))
        if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                       or max_tokens < 1):
            raise InvalidRequestError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        timeout = kw.pop("timeout", None)
        stream = bool(kw.get("stream"))
        so = kw.get("stream_options")
        caller_usage = stream and isinstance(so, Mapping) and bool(so.get("include_usage"))

        known = _known_params()
        params: dict[str, Any] = {}
        extra = dict(extra_body or {})
        for k, v in kw.items():
            if k in known:
                params[k] = v
            else:
                extra[k] = v
        if extra:
            params["extra_body"] = extra
        return _State(
            request_id=rid, requested_model=name, auto=auto, model=canonical, tier=tier, opts=opts,
            params=params, parsed=parsed, messages=messages, max_tokens=max_tokens, stream=stream,
            caller_usage=caller_usage, timeout=timeout if timeout is not None else self.timeout,
            client_tag=client_tag,
        )

    # -- routing ---------------------------------------------------------------------------
    def route(self, st: _State, exclude: Sequence[str] = ()) -> Any:
        return self.router.route(
            st.messages, tier=st.tier, min_quality=st.opts.get("min_quality"), max_cost=st.opts.get("max_cost"),
            max_quality_gap=st.opts.get("max_quality_gap"), max_tokens=st.max_tokens, exclude=exclude,
        )

    def first_route(self, st: _State) -> Any:
        cooling = self.health.cooling()
        if cooling:
            try:
                return self.route(st, sorted(cooling))
            except NoEligibleModelError:
                pass  # everything left is cooling: try them anyway rather than fail the request
        return self.route(st)

    def adapt(self, st: _State, model: str) -> tuple[dict[str, Any], list[str]]:
        cached = st.adapted.get(model)
        if cached is not None:
            return cached
        spec = self.catalog[model]
        p = dict(st.params)
        p["model"] = spec.name
        notes: list[str] = []
        for name in sorted(spec.unsupported_params & p.keys()):
            p.pop(name)
            notes.append(f"dropped {name}")
        for key in ("max_tokens", "max_completion_tokens"):
            v = p.get(key)
            if isinstance(v, int) and v > spec.max_output_tokens:
                p[key] = spec.max_output_tokens
                notes.append(f"{key} {v} -> {spec.max_output_tokens}")
        if st.parsed.has_images and not spec.vision:
            p["messages"] = _strip_images(p["messages"])
            notes.append("removed image parts")
        if st.stream and self.retry.stream_usage:
            so = dict(p.get("stream_options") or {})
            so["include_usage"] = True
            p["stream_options"] = so
        st.adapted[model] = (p, notes)
        return p, notes

    # -- the request, as a generator of actions ----------------------------------------------
    def run(self, st: _State, decision: Any) -> Generator[Any, Any, tuple[str, Any]]:
        st.decision = decision
        model = decision.model if decision is not None else st.model
        while True:
            outcome = yield from self.attempts(st, model)
            if outcome is not None:
                break
            st.failed.append(model)
            model = self.fallback(st)
            if model is None:
                raise self.exhausted(st)
        if not st.stream:
            model, outcome = yield from self.escalate(st, model, outcome)
        return model, outcome

    def attempts(self, st: _State, model: str) -> Generator[Any, Any, Any]:
        """Try ``model`` with retries; its response (or opened stream), or ``None`` to fall back."""
        st.tried.append(model)
        params, notes = self.adapt(st, model)
        retry = self.retry
        for attempt in range(1, retry.max_attempts + 1):
            res: _Result = yield _Call(model, params, st.stream, st.timeout, st.raw)
            entry: dict[str, Any] = {"model": model, "attempt": attempt, "latency_ms": round(res.latency_ms, 2)}
            if notes:
                entry["adapted"] = list(notes)
            if res.ok:
                self.health.success(model)
                entry.update(status="ok", reason="stream opened" if st.stream else "answered")
                st.chain.append(entry)
                if not st.stream:
                    pt, ct = self.tokens(st, res.value)
                    st.cost += self.catalog[model].cost(pt, ct)
                return res.value
            f = _classify(res.error)
            if f.kind == "bug":
                raise res.error  # a programming error: not the provider's fault
            st.last = f
            entry.update(status="error", reason=f.reason)
            if f.status_code is not None:
                entry["status_code"] = f.status_code
            st.chain.append(entry)
            cooled = self.health.failure(model) if f.counts else False
            if f.fatal:
                raise self.error(st, model, f"{model} rejected the request: {f.reason}: {f.message}")
            if not f.retryable or attempt >= retry.max_attempts or cooled:
                return None
            yield _Sleep(retry.delay(attempt, f.retry_after, self.rng))
        return None

    def fallback(self, st: _State) -> str | None:
        if not self.retry.fallback:
            return None
        if st.decision is None and not self.retry.fallback_explicit:
            return None
        if len(st.tried) > self.retry.max_fallbacks:
            return None
        exclude = set(st.failed) | set(st.tried) | self.health.cooling()
        try:
            d = self.route(st, sorted(exclude))
        except NoEligibleModelError:
            return None
        if st.decision is None:
            st.decision = d
        return d.model

    def escalate(self, st: _State, model: str, response: Any) -> Generator[Any, Any, tuple[str, Any]]:
        pol = self.escalation
        d = st.decision
        if pol is None or d is None or not st.auto or pol.max_escalations <= 0 or st.opts.get("escalate") is False:
            return model, response
        for _ in range(pol.max_escalations):
            hit = pol.triggered(_response_text(response), d.task)
            if hit is None:
                break
            q = d.predicted_quality.get(model, 0.0)
            pool = [m for m in d.candidates
                    if d.predicted_quality.get(m, 0.0) > q + pol.min_quality_gain
                    and m not in st.tried and not self.health.is_cooling(m)]
            if not pool:
                self._note(st, model, f"check {hit} fired; no stronger candidate")
                break
            nxt = min(pool, key=lambda m: (d.estimated_costs.get(m, float("inf")), -d.predicted_quality[m], m))
            est = d.estimated_costs.get(nxt, 0.0)
            cap = st.max_cost
            if cap is not None and st.cost + est > cap + 1e-15:
                self._note(st, model, f"check {hit} fired; {nxt} would exceed the cost cap "
                                      f"(${st.cost:.6f} spent + ${est:.6f} > ${cap:.6f})")
                break
            for e in reversed(st.chain):
                if e["model"] == model and e["status"] == "ok":
                    e.update(status="escalated", reason=f"check {hit} fired; escalated to {nxt}")
                    break
            try:
                new = yield from self.attempts(st, nxt)
            except UpstreamError:  # the stronger model refused the request: keep the answer we have
                new = None
            if new is None:
                for e in reversed(st.chain):  # the escalation failed: the earlier answer stands
                    if e["model"] == model and e["status"] == "escalated":
                        e.update(status="ok", reason=e["reason"] + " (which failed; this answer kept)")
                        break
                break
            st.escalated = True
            model, response = nxt, new
        return model, response

    @staticmethod
    def _note(st: _State, model: str, text: str) -> None:
        for e in reversed(st.chain):
            if e["model"] == model and e["status"] == "ok":
                e["note"] = text
                return

    # -- errors, metadata, logging -----------------------------------------------------------
    def error(self, st: _State, model: str | None, message: str) -> UpstreamError:
        f = st.last
        err = UpstreamError(message, status_code=f.status_code if f else None, model=model)
        err.kind = f.kind if f else None  # type: ignore[attr-defined]
        err.request_id = st.request_id  # type: ignore[attr-defined]
        err.chain = list(st.chain)  # type: ignore[attr-defined]
        err.upstream_message = f.message if f else None  # type: ignore[attr-defined]
        return err

    def exhausted(self, st: _State) -> UpstreamError:
        per: dict[str, list[str]] = {}
        for e in st.chain:
            if e["status"] == "error":
                per.setdefault(e["model"], []).append(e["reason"])
        parts = [f"{m}: {', '.join(rs)}" for m, rs in per.items()]
        last_model = st.tried[-1] if st.tried else None
        msg = "every model failed (" + "; ".join(parts) + ")"
        if st.last and st.last.message:
            msg += f"; last error: {st.last.message}"
        return self.error(st, last_model, msg)

    def tokens(self, st: _State, response: Any) -> tuple[int, int]:
        u = getattr(response, "usage", None)
        if u is not None and getattr(u, "prompt_tokens", None) is not None:
            return int(u.prompt_tokens or 0), int(u.completion_tokens or 0)
        return st.parsed.prompt_tokens, estimate_tokens(_response_text(response))

    def meta(self, st: _State, model: str | None, cost: float | None) -> dict[str, Any]:
        d = st.decision
        return {
            "model": model,
            "requested_model": st.requested_model,
            "task": d.task if d is not None else None,
            "tier": d.tier if (d is not None and st.auto) else None,
            "predicted_quality": d.predicted_quality.get(model) if (d is not None and model) else None,
            "estimated_cost": d.estimated_costs.get(model) if (d is not None and model) else None,
            "cost_usd": cost,
            "chain": st.chain,
            "request_id": st.request_id,
            "rule": (d.rule if st.auto else "explicit") if d is not None else "explicit",
            "escalated": st.escalated,
            "latency_ms": round((time.perf_counter() - st.t0) * 1000.0, 2),
        }

    def finish(self, st: _State, model: str, response: Any) -> Any:
        """A non-streaming success: attach ``response.router`` and log."""
        pt, ct = self.tokens(st, response)
        meta = self.meta(st, model, st.cost)
        try:
            setattr(response, "router", meta)
        except Exception:  # pragma: no cover - a response type without extra attributes
            pass
        self.log(st, model, "ok", None, pt, ct, meta["latency_ms"])
        return response

    def log(self, st: _State, model: str | None, status: str, error: str | None, pt: int, ct: int,
            latency_ms: float | None = None) -> None:
        if self.usage is None:
            return
        try:
            from ..usage.store import UsageRecord, hash_prompt

            d = st.decision
            text = st.parsed.text
            self.usage.log(UsageRecord(
                request_id=st.request_id, created_at=st.created_at,
                task=d.task if d is not None else None,
                model=model or st.requested_model, requested_model=st.requested_model,
                tier=d.tier if (d is not None and st.auto) else None,
                predicted_quality=d.predicted_quality.get(model) if (d is not None and model) else None,
                prompt_tokens=int(pt), completion_tokens=int(ct), cost_usd=float(st.cost),
                latency_ms=float(latency_ms if latency_ms is not None else (time.perf_counter() - st.t0) * 1000.0),
                status=status, error=error, chain=list(st.chain), escalated=st.escalated, stream=st.stream,
                prompt=text, prompt_hash=hash_prompt(text), client=st.client_tag,
            ))
        except Exception:  # logging must never fail a request
            log.warning("usage logging failed for %s", st.request_id, exc_info=True)

    def log_failure(self, st: _State, exc: BaseException, status: str = "error") -> None:
        model = st.tried[-1] if st.tried else (st.model or st.requested_model)
        self.log(st, model, status, f"{type(exc).__name__}: {exc}"[:2000], st.parsed.prompt_tokens, 0)

    def log_rejected(self, rid: str, requested: Any, exc: BaseException, client_tag: str | None,
                     stream: bool) -> None:
        if self.usage is None:
            return
        try:
            from ..usage.store import UsageRecord

            name = requested if isinstance(requested, str) and requested else "(none)"
            self.usage.log(UsageRecord(
                request_id=rid, created_at=time.time(), task=None, model=name[:255], requested_model=name[:255],
                tier=None, predicted_quality=None, prompt_tokens=0, completion_tokens=0, cost_usd=0.0,
                latency_ms=0.0, status="rejected", error=f"{type(exc).__name__}: {exc}"[:2000], stream=stream,
                client=client_tag,
            ))
        except Exception:
            log.warning("usage logging failed for %s", rid, exc_info=True)


# -- streams --------------------------------------------------------------------------------
class _Tally:
    """Shared bookkeeping of one routed stream: text, usage, the final log record."""

    def __init__(self, core: _Core, st: _State, model: str, meta: dict[str, Any]):
        self.core, self.st, self.model, self.meta = core, st, model, meta
        self.parts: list[str] = []
        self.usage: Any = None
        self.finished = False  # a finish_reason was seen
        self.logged = False
        self.last: Any = None

    def see(self, chunk: Any) -> bool:
        """Record ``chunk``; whether the caller should get it."""
        self.last = chunk
        u = getattr(chunk, "usage", None)
        if u is not None:
            self.usage = u
        choices = getattr(chunk, "choices", None) or ()
        for ch in choices:
            if ch.delta is not None and ch.delta.content:
                self.parts.append(ch.delta.content)
            if ch.finish_reason is not None:
                self.finished = True
        if u is not None and not choices and not self.st.caller_usage:
            return False  # the usage chunk we asked for on the caller's behalf
        return True

    def error_chunk(self, exc: BaseException) -> Any:
        from openai.types.chat import ChatCompletionChunk

        f = _classify(exc)
        last = self.last
        err = {"message": f"the stream from {self.model} broke after it started: {f.message or f.reason}",
               "type": "upstream_error", "param": None, "code": f.kind}
        chunk = ChatCompletionChunk.model_construct(
            id=getattr(last, "id", None) or self.st.request_id, object="chat.completion.chunk",
            created=getattr(last, "created", None) or int(time.time()), model=getattr(last, "model", None) or self.model,
            choices=[], error=err,
        )
        return chunk

    def finish(self, status: str, error: str | None = None) -> None:
        if self.logged:
            return
        self.logged = True
        try:
            st = self.st
            if status == "cancelled" and self.finished:
                status = "ok"
            if self.usage is not None and getattr(self.usage, "prompt_tokens", None) is not None:
                pt, ct = int(self.usage.prompt_tokens or 0), int(self.usage.completion_tokens or 0)
            else:
                pt, ct = st.parsed.prompt_tokens, estimate_tokens("".join(self.parts))
            st.cost += self.core.catalog[self.model].cost(pt, ct)
            if status != "ok":
                for e in reversed(st.chain):
                    if e["model"] == self.model and e["status"] == "ok":
                        e.update(status=status, reason=error or status)
                        break
            self.meta.update(self.core.meta(st, self.model, st.cost))
            self.meta["status"] = status
            self.core.log(st, self.model, status, error, pt, ct, self.meta["latency_ms"])
        except Exception:
            log.warning("stream bookkeeping failed", exc_info=True)


class RoutedStream:
    """An iterator of ``ChatCompletionChunk`` from the routed model. ``router`` holds the routing
    metadata (``cost_usd`` and ``status`` are filled in when the stream ends)."""

    def __init__(self, gen: Iterator[Any], meta: dict[str, Any]):
        self._gen = gen
        self.router = meta

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

    def __init__(self, gen: AsyncIterator[Any], meta: dict[str, Any]):
        self._gen = gen
        self.router = meta

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


def _sync_stream(opened: _Opened, tally: _Tally) -> Iterator[Any]:
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
                status, error = "error", _classify(exc).message or type(exc).__name__
                yield tally.error_chunk(exc)
                return
        status = "ok"
    finally:
        try:
            opened.stream.close()
        except Exception:
            pass
        tally.finish(status, error)


async def _async_stream(opened: _Opened, tally: _Tally) -> AsyncIterator[Any]:
    status, error = "cancelled", None
    try:
        for c in opened.buffered:
            if tally.see(c):
                yield c
        if not opened.done:
            try:
                async for c in opened.iterator:
                    if tally.see(c):
                        yield c
            except Exception as exc:
                status, error = "error", _classify(exc).message or type(exc).__name__
                yield tally.error_chunk(exc)
                return
        status = "ok"
    finally:
        try:
            await opened.stream.close()
        except BaseException:
            pass
        tally.finish(status, error)


# -- the gateway's raw path -----------------------------------------------------------------
def _raw_body(params: Mapping[str, Any]) -> bytes:
    extra = params.get("extra_body")
    if extra:
        body = {k: v for k, v in params.items() if k != "extra_body"}
        body.update(extra)
    elif "extra_body" in params:
        body = {k: v for k, v in params.items() if k != "extra_body"}
    else:
        body = params
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


async def _raw_send(target: _RawTarget, call: _Call) -> Any:
    """POST ``call`` with the SDK client's own HTTP client -> the httpx2 response (streamed when
    ``call.stream``), raising the SDK's exception types for transport failures
    (``APITimeoutError``, ``APIConnectionError``) and HTTP errors (``APIStatusError`` and
    subclasses) so :func:`_classify` treats failures exactly as on the SDK path."""
    import openai

    timeout = call.timeout
    headers = target.headers
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        headers = {**headers, "x-stainless-read-timeout": str(float(timeout))}
    http = target.http
    request = http.build_request("POST", target.url, content=_raw_body(call.params), headers=headers,
                                 timeout=timeout)
    try:
        response = await http.send(request, stream=call.stream)
    except openai.OpenAIError:
        raise
    except (*target.timeout_errors, TimeoutError) as exc:
        raise openai.APITimeoutError(request=request) from exc
    except Exception as exc:
        raise openai.APIConnectionError(request=request) from exc
    if not 200 <= response.status_code < 300:  # what the SDK's raise_for_status turns into errors
        try:
            await response.aread()
        finally:
            await response.aclose()
        raise target.sdk._make_status_error_from_response(response)
    return response


async def _raw_post(target: _RawTarget, call: _Call) -> _RawCompletion:
    """A non-streaming chat completion on the raw path: the provider's JSON, or the SDK's
    exception types (:func:`_raw_send`; ``json.JSONDecodeError`` for a malformed body)."""
    response = await _raw_send(target, call)
    body = response.content
    data = json.loads(body)  # json.JSONDecodeError: malformed
    if not isinstance(data, dict):
        raise json.JSONDecodeError("expected a JSON object", body.decode("utf-8", "replace")[:100], 0)
    return _RawCompletion(data, body)


class _RawStream:
    """The open HTTP response of a raw stream; ``close()`` as the SDK's stream has."""

    __slots__ = ("response",)

    def __init__(self, response: Any):
        self.response = response

    async def close(self) -> None:
        await self.response.aclose()


async def _raw_chunks(target: _RawTarget, response: Any) -> AsyncIterator[_RawChunk]:
    """The events of a raw stream, decoded and checked as ``openai.AsyncStream`` does: ``[DONE]``
    ends it, an ``error`` object raises ``APIError``, transport failures raise
    ``APITimeoutError`` / ``APIConnectionError``, invalid JSON ``json.JSONDecodeError``."""
    import openai

    request = response.request
    try:
        try:
            async for sse in target.sse_decoder().aiter_bytes(response.aiter_bytes()):
                if sse.data.startswith("[DONE]"):
                    if response.http_version == "HTTP/1.1":
                        await target.drain(response)  # keep the connection reusable
                    return
                data = sse.json()
                if isinstance(data, dict) and data.get("error"):
                    err = data["error"]
                    message = err.get("message") if isinstance(err, dict) else None
                    if not message or not isinstance(message, str):
                        message = "An error occurred during streaming"
                    raise openai.APIError(message=message, request=request, body=err)
                if not isinstance(data, dict):
                    raise json.JSONDecodeError("expected a JSON object", sse.data[:100], 0)
                yield _RawChunk(data, sse.data)
        except target.timeout_errors as err:
            raise openai.APITimeoutError(request=request) from err
        except target.request_errors as err:
            raise openai.APIConnectionError(request=request) from err
    finally:
        await response.aclose()


async def _raw_open(target: _RawTarget, call: _Call) -> _Opened:
    """A streaming chat completion on the raw path, read up to its first meaningful chunk (what
    commits the stream to its model); failures raise as in :func:`_raw_send` and
    :func:`_raw_chunks`, so retries and fallback behave as on the SDK path."""
    response = await _raw_send(target, call)
    stream = _RawStream(response)
    try:
        return await _aopen(stream, _raw_chunks(target, response))
    except BaseException:
        await stream.close()
        raise


async def _aopen(stream: Any, it: AsyncIterator[Any]) -> _Opened:
    """Read ``it`` up to its first meaningful chunk, keeping what came before it."""
    buffered: list[Any] = []
    async for chunk in it:
        buffered.append(chunk)
        if _meaningful(chunk):
            return _Opened(stream, it, buffered, False)
    return _Opened(stream, it, buffered, True)


# -- the SDK-shaped surface -----------------------------------------------------------------
class _Completions:
    def __init__(self, create: Callable[..., Any]):
        self._create = create

    def create(self, **kwargs: Any) -> Any:
        """Like ``openai.OpenAI().chat.completions.create``; see :mod:`router.client`."""
        return self._create(kwargs)


class _Chat:
    def __init__(self, create: Callable[..., Any]):
        self.completions = _Completions(create)


class _Base:
    """What the sync and async clients share: construction and the read-only views.

    ``sleep`` defaults to ``time.sleep`` (sync) or ``asyncio.sleep`` (async)."""

    _core: _Core
    _default_sleep: Callable[[float], Any]

    def __init__(self, router: Any, *, clients: Mapping[str, Any] | None = None,
                 async_clients: Mapping[str, Any] | None = None, base_url: str | None = None,
                 api_key: str | None = None, usage: Any = None, retry: RetryPolicy = RetryPolicy(),
                 escalation: EscalationPolicy | None = EscalationPolicy(), timeout: float = 60.0,
                 cooldown_s: float = 30.0, failure_threshold: int = 3,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], Any] | None = None):
        self._core = _Core(router, clients=clients, async_clients=async_clients, base_url=base_url,
                           api_key=api_key, usage=usage, retry=retry, escalation=escalation, timeout=timeout,
                           cooldown_s=cooldown_s, failure_threshold=failure_threshold, clock=clock)
        self._sleep = sleep if sleep is not None else self._default_sleep
        self.chat = _Chat(self._create)

    @property
    def router(self) -> Any:
        return self._core.router

    @property
    def catalog(self) -> Any:
        return self._core.catalog

    @property
    def usage(self) -> Any:
        return self._core.usage

    @property
    def retry(self) -> RetryPolicy:
        return self._core.retry

    def cooling(self) -> frozenset[str]:
        """Models now cooling down (excluded from routing)."""
        return self._core.health.cooling()

    def health(self) -> dict[str, dict[str, float]]:
        """Per-model consecutive failures and cooldown left."""
        return self._core.health.snapshot()


class RoutedClient(_Base):
    """A synchronous, OpenAI-SDK-shaped client over the router; see :mod:`router.client`.

    Nothing touches the network at construction: provider clients are built on first use, from
    the catalog's ``base_url`` and the key in the variable named by ``api_key_env`` — or from one
    ``base_url`` (+ ``api_key``, else ``$ROUTER_API_KEY``) for every model (``$ROUTER_BASE_URL``
    sets it too), or ``clients`` (model name -> ``openai.OpenAI``; ``"*"`` for any model).
    """

    _default_sleep = staticmethod(time.sleep)
    _aio: AsyncRoutedClient | None = None

    @property
    def aio(self) -> AsyncRoutedClient:
        """An async client sharing this one's providers, cooldowns and usage log."""
        if self._aio is None:
            self._aio = AsyncRoutedClient._from_core(self._core)
        return self._aio

    def close(self) -> None:
        """Close the provider clients this client built (injected ones and the usage log stay open)."""
        self._core.close_sync()

    def __enter__(self) -> RoutedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _create(self, kwargs: Mapping[str, Any], *, request_id: str | None = None,
                client_tag: str | None = None) -> Any:
        core = self._core
        st = core.start(kwargs, request_id, client_tag)
        try:
            decision = core.first_route(st) if st.auto else None
            model, outcome = self._drive(core.run(st, decision))
        except BaseException as exc:
            core.log_failure(st, exc, "cancelled" if isinstance(exc, KeyboardInterrupt) else "error")
            raise
        if not st.stream:
            return core.finish(st, model, outcome)
        meta = core.meta(st, model, None)
        return RoutedStream(_sync_stream(outcome, _Tally(core, st, model, meta)), meta)

    def _drive(self, gen: Generator[Any, Any, Any]) -> Any:
        try:
            action = next(gen)
            while True:
                if isinstance(action, _Sleep):
                    if action.seconds > 0:
                        self._sleep(action.seconds)
                    action = gen.send(None)
                else:
                    action = gen.send(self._perform(action))
        except StopIteration as stop:
            return stop.value

    def _perform(self, call: _Call) -> _Result:
        t0 = time.perf_counter()
        stream = None
        try:
            client = self._core.sync_client(call.model)
            out = client.chat.completions.create(**call.params, timeout=call.timeout)
            if call.stream:
                stream = out
                it = iter(out)
                buffered: list[Any] = []
                done = True
                for chunk in it:
                    buffered.append(chunk)
                    if _meaningful(chunk):
                        done = False
                        break
                out = _Opened(stream, it, buffered, done)
            return _Result(True, out, latency_ms=(time.perf_counter() - t0) * 1000.0)
        except Exception as exc:
            if stream is not None:
                try:
                    stream.close()
                except Exception:
                    pass
            return _Result(False, error=exc, latency_ms=(time.perf_counter() - t0) * 1000.0)


class AsyncRoutedClient(_Base):
    """The ``async``/``await`` twin of :class:`RoutedClient` (same arguments; ``sleep`` is a
    coroutine function, ``asyncio.sleep`` by default; ``async_clients`` are ``openai.AsyncOpenAI``)."""

    _default_sleep = staticmethod(asyncio.sleep)

    @classmethod
    def _from_core(cls, core: _Core, sleep: Callable[[float], Any] = asyncio.sleep) -> AsyncRoutedClient:
        self = cls.__new__(cls)
        self._core = core
        self._sleep = sleep
        self.chat = _Chat(self._create)
        return self

    async def aclose(self) -> None:
        """Close the provider clients built in the running event loop."""
        await self._core.close_async()

    close = aclose

    async def __aenter__(self) -> AsyncRoutedClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _create(self, kwargs: Mapping[str, Any], *, request_id: str | None = None,
                      client_tag: str | None = None, raw: bool = False) -> Any:
        """``raw`` (the gateway's path): a non-streaming answer comes back as a ``_RawCompletion``
        (the provider's JSON, with ``.router``) rather than an SDK ``ChatCompletion``, and a
        stream yields ``_RawChunk`` (each event's JSON text as the provider sent it) rather than
        SDK ``ChatCompletionChunk`` objects; a stream that breaks still ends with an SDK chunk
        carrying ``error``."""
        core = self._core
        st = core.start(kwargs, request_id, client_tag)
        st.raw = raw
        try:
            decision = None
            if st.auto:
                if core._heavy_routing:  # a learned router embeds: keep the event loop free
                    decision = await asyncio.to_thread(core.first_route, st)
                else:
                    decision = core.first_route(st)
            model, outcome = await self._drive(core.run(st, decision))
        except BaseException as exc:
            cancelled = isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt))
            core.log_failure(st, exc, "cancelled" if cancelled else "error")
            raise
        if not st.stream:
            return core.finish(st, model, outcome)
        meta = core.meta(st, model, None)
        return AsyncRoutedStream(_async_stream(outcome, _Tally(core, st, model, meta)), meta)

    async def _drive(self, gen: Generator[Any, Any, Any]) -> Any:
        try:
            action = next(gen)
            while True:
                if isinstance(action, _Sleep):
                    if action.seconds > 0:
                        await self._sleep(action.seconds)
                    action = gen.send(None)
                else:
                    action = gen.send(await self._perform(action))
        except StopIteration as stop:
            return stop.value

    async def _perform(self, call: _Call) -> _Result:
        t0 = time.perf_counter()
        stream = None
        try:
            client = self._core.async_client(call.model)
            if call.raw:
                target = self._core.raw_target(client)
                if target is not None:
                    out = await (_raw_open(target, call) if call.stream else _raw_post(target, call))
                    return _Result(True, out, latency_ms=(time.perf_counter() - t0) * 1000.0)
            out = await client.chat.completions.create(**call.params, timeout=call.timeout)
            if call.stream:
                stream = out
                out = await _aopen(stream, out.__aiter__())
            return _Result(True, out, latency_ms=(time.perf_counter() - t0) * 1000.0)
        except BaseException as exc:
            if stream is not None:
                try:
                    await stream.close()
                except BaseException:
                    pass
            if not isinstance(exc, Exception):
                raise
            return _Result(False, error=exc, latency_ms=(time.perf_counter() - t0) * 1000.0)

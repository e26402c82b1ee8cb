"""``RoutedClient``: an OpenAI-SDK-shaped client that routes, retries, falls back and logs.

::

    from router import Router, RoutedClient

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
2. **Adapt** the parameters to the model (:mod:`.adapt`): drop the catalog's
   ``unsupported_params``, clip ``max_tokens`` / ``max_completion_tokens`` to
   ``max_output_tokens``, strip image parts for a model without vision.
3. **Call** through the transport (:class:`~.transport.ChatTransport`; the openai SDK by
   default, ``transport=RawTransport()`` for the raw httpx one) with a per-attempt timeout. 429
   (``Retry-After`` honoured, capped), 408, 409, 5xx, timeouts, connection errors and malformed
   JSON are retried with exponential backoff and full jitter; 400 / 413 / 422 end the request
   (the request itself is wrong); other 4xx (401, 403, 404: the model's provider is
   misconfigured) skip to the fallback without retrying (:mod:`.failures`).
4. **Fall back** when a model's retries are exhausted: re-route with the failed models excluded
   (same constraints, the policy's order). A named model falls back only with
   ``RetryPolicy(fallback_explicit=True)``. A model failing ``failure_threshold`` attempts in a
   row cools down for ``cooldown_s`` (excluded from routing; injectable ``clock``).
5. **Escalate** (non-streaming ``auto`` requests): when a check of the :class:`EscalationPolicy`
   fires on the answer, re-ask the cheapest candidate with a higher predicted quality, if the
   cost so far plus its estimated cost stays within ``max_cost``.
6. **Log** one :class:`~router.serving.usage.store.UsageRecord` per request (never per attempt)
   with the whole chain; attach ``response.router`` (model, task, tier, predicted_quality,
   estimated_cost, cost_usd, chain, request_id, rule, ...). Logging never raises into the caller.
   Statuses: ``ok``, ``error`` (every model failed, or a stream broke after its first token),
   ``cancelled`` (the caller abandoned the request or the stream before its end) and
   ``rejected`` (an invalid request or unknown model: nothing was sent upstream).

Streams: a failure before the first token (content, tool call, refusal, finish reason or usage)
is retried / falls back like any other; after it, the stream ends with a final chunk whose
``error`` attribute holds an OpenAI-style error object (``{"message", "type", "code"}``), and the
request is logged with status ``"error"``.

:class:`AsyncRoutedClient` is the same for ``async``/``await``; both drive one sans-I/O core
(:mod:`.machine`), so retry, fallback, cooldown, escalation and logging behave identically.
``RoutedClient.aio`` is an async client that shares the sync one's cooldown state, transport and
usage log. The gateway uses :meth:`AsyncRoutedClient.create_json` / :meth:`~AsyncRoutedClient.stream_json`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import InvalidRequestError
from ...routing import Router
from ...tasks.taxonomy import RegexTaskClassifier
from .drivers import drive_async, drive_sync
from .machine import DEFAULT_DEADLINE, Machine
from .options import RequestState, new_request_id
from .learning import Explorer
from .policies import EscalationPolicy, RetryPolicy
from .providers import Providers
from .records import log_failure, log_request, meta, response_text, tokens
from .sdk_transport import SDKTransport
from .streams import AsyncRoutedStream, RoutedStream, Tally, async_chunks, sync_chunks
from .transport import ChatTransport

__all__ = ["RoutedClient", "AsyncRoutedClient", "JsonCompletion", "JsonEventStream", "LIGHT_ROUTING_TOKENS"]

#: Prompts up to this many (estimated) tokens are routed on the event loop by the regex router;
#: bigger ones, and every prompt of a learned router, in a worker thread.
LIGHT_ROUTING_TOKENS = 4000


class _Completions:
    def __init__(self, create: Callable[..., Any]):
        self._create = create

    def create(self, **kwargs: Any) -> Any:
        """Like ``openai.OpenAI().chat.completions.create``; see :mod:`router.serving.client`."""
        return self._create(kwargs)


class _Chat:
    def __init__(self, create: Callable[..., Any]):
        self.completions = _Completions(create)


@dataclass
class _Shared:
    """What a sync client and its ``.aio`` twin share."""

    machine: Machine
    transport: ChatTransport
    providers: Providers
    light_routing: bool  # the regex classifier: route on the event loop, not in a thread


class _Base:
    """Construction and the read-only views the sync and async clients share.

    ``router``: the :class:`~router.Router` that decides; ``None`` builds one by the project's
    precedence (:meth:`Router.from_config`: ``$ROUTER_MODEL`` > ``mlflow.yaml``'s ``router:`` >
    the registered champion > cold start).
    ``transport``: a :class:`ChatTransport` (default: an SDK transport built from ``clients`` /
    ``async_clients`` and ``timeout``; give one or the other). ``sleep`` defaults to
    ``time.sleep`` (sync) or ``asyncio.sleep`` (async). ``timeout``: seconds per attempt;
    ``deadline``: seconds for the whole request, every attempt, backoff and fallback included
    (a request's ``deadline`` option overrides it; ``None``: no deadline); for a stream it bounds
    the time to the first output and each gap between chunks (async client).

    The learning loop: ``escalate`` is the default of the request option of the same name
    (``False``, ``"checks"`` or ``{"target", "max_steps", "agree"}``, see :mod:`.learning`);
    ``exploration`` is ε of ε-greedy exploration on ``auto`` requests (``rng``: a
    ``numpy.random.Generator``, seeded in tests; a request opts out with ``explore: false``);
    ``router_version`` is logged with every routed request (a registry ``name/version`` or a
    folder's fingerprint, :func:`router.serving.reload.router_version`)."""

    _shared: _Shared
    _default_sleep: Callable[[float], Any]

    def __init__(self, router: Router | None = None, *, transport: ChatTransport | None = None,
                 clients: Mapping[str, Any] | None = None, async_clients: Mapping[str, Any] | None = None,
                 base_url: str | None = None, api_key: str | None = None, usage: Any = None,
                 retry: RetryPolicy = RetryPolicy(), escalation: EscalationPolicy | None = EscalationPolicy(),
                 timeout: float = 60.0, cooldown_s: float = 30.0, failure_threshold: int = 3,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], Any] | None = None,
                 escalate: Any = "checks", exploration: float = 0.0, rng: Any = None,
                 router_version: str | None = None, deadline: float | None = DEFAULT_DEADLINE):
        if router is None:
            router = Router.from_config()
        if transport is None:
            transport = SDKTransport(clients=clients, async_clients=async_clients, timeout=timeout)
        elif clients or async_clients:
            raise ValueError("give a transport or SDK clients, not both")
        elif not isinstance(transport, ChatTransport):
            raise TypeError(f"transport must implement ChatTransport, got {type(transport).__name__}")
        machine = Machine(router, usage=usage, retry=retry, escalation=escalation, timeout=timeout,
                          cooldown_s=cooldown_s, failure_threshold=failure_threshold, clock=clock,
                          explorer=Explorer(exploration, rng), escalate=escalate, router_version=router_version,
                          deadline=deadline)
        self._shared = _Shared(machine, transport, Providers(router.catalog, base_url=base_url, api_key=api_key),
                               isinstance(router.classifier, RegexTaskClassifier))
        self._sleep = sleep if sleep is not None else self._default_sleep
        self.chat = _Chat(self._create)

    def _create(self, kwargs: Mapping[str, Any]) -> Any:  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    @property
    def router(self) -> Any:
        return self._shared.machine.router

    @property
    def router_version(self) -> str | None:
        return self._shared.machine.router_version

    def swap_router(self, router: Router, version: str | None = None) -> None:
        """Route with ``router`` from the next request on (a newly promoted champion; the
        ``on_change`` of a :class:`~router.serving.reload.ChampionWatcher`); requests in flight
        finish with the router they started with. Shared with the ``.aio`` twin."""
        sh = self._shared
        sh.machine.swap(router, version)
        sh.providers.catalog = router.catalog
        sh.light_routing = isinstance(router.classifier, RegexTaskClassifier)

    def feedback(self, request_id: str, *, score: float | None = None, thumbs: str | None = None,
                 rating: float | None = None, comment: str | None = None, origin: str = "human",
                 model: str | None = None, meta: Mapping[str, Any] | None = None) -> int:
        """Store feedback on a logged request in the client's usage log: one of ``score`` (0..1),
        ``thumbs`` (``"up"`` / ``"down"``) or ``rating`` (1..10), mapped as the gateway's
        ``POST /v1/feedback`` maps them; ``origin`` any of the usage log's origins (the library is
        trusted; an ``origin="judge"`` grade must carry its provenance in ``meta``: judge_model,
        rubric_version, rubric_sha256, as ``router judge`` writes). Returns the feedback id;
        :class:`InvalidRequestError` names a bad value."""
        from ..usage.record import score_from

        usage = self._shared.machine.usage
        if usage is None:
            raise InvalidRequestError("this client has no usage log: feedback cannot be stored")
        value = score_from(score=score, thumbs=thumbs, rating=rating)
        return usage.add_feedback(request_id, value, comment, origin=origin, model=model, meta=meta)

    @property
    def catalog(self) -> Any:
        return self._shared.machine.catalog

    @property
    def usage(self) -> Any:
        return self._shared.machine.usage

    @property
    def retry(self) -> RetryPolicy:
        return self._shared.machine.retry

    @property
    def transport(self) -> ChatTransport:
        return self._shared.transport

    def cooling(self) -> frozenset[str]:
        """Models now cooling down (excluded from routing)."""
        return self._shared.machine.health.cooling()

    def health(self) -> dict[str, dict[str, float]]:
        """Per-model consecutive failures and cooldown left."""
        return self._shared.machine.health.snapshot()


class RoutedClient(_Base):
    """A synchronous, OpenAI-SDK-shaped client over the router; see :mod:`router.serving.client`.

    Nothing touches the network at construction: connections are made on first use, to the
    catalog's ``base_url`` with the key in the variable named by ``api_key_env`` — or to one
    ``base_url`` (+ ``api_key``, else ``$ROUTER_API_KEY``) for every model (``$ROUTER_BASE_URL``
    sets it too). ``clients``: model name -> ``openai.OpenAI`` (``"*"`` for any model).
    """

    _default_sleep = staticmethod(time.sleep)
    _aio: AsyncRoutedClient | None = None

    @property
    def aio(self) -> AsyncRoutedClient:
        """An async client sharing this one's transport, cooldowns and usage log."""
        if self._aio is None:
            self._aio = AsyncRoutedClient._from_shared(self._shared)
        return self._aio

    def close(self) -> None:
        """Close the transport's connections (injected SDK clients and the usage log stay open)."""
        self._shared.transport.close()

    def __enter__(self) -> RoutedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _create(self, kwargs: Mapping[str, Any]) -> Any:
        sh = self._shared
        m = sh.machine
        st = m.start(kwargs, new_request_id(), None)
        try:
            decision = m.first_route(st) if st.auto else None
            model, outcome = drive_sync(m.run(st, decision), sh.transport, sh.providers, self._sleep)
        except BaseException as exc:
            log_failure(m.usage, st, exc, "cancelled" if isinstance(exc, KeyboardInterrupt) else "error")
            raise
        if not st.stream:
            return _finish(m, st, model, outcome)
        info = meta(st, model, None)
        return RoutedStream(sync_chunks(outcome, Tally(m, sh.transport, st, model, info)), info)


def _finish(m: Machine, st: RequestState, model: str, response: Any) -> Any:
    """A non-streaming success: attach ``response.router`` and log."""
    pt, ct = tokens(st, response)
    st.answer = response_text(response)
    info = meta(st, model, st.cost)
    response.router = info
    log_request(m.usage, st, model, "ok", None, pt, ct, info["latency_ms"])
    return response


@dataclass(frozen=True)
class JsonCompletion:
    """A non-streaming answer as the gateway sends it: ``body`` (JSON bytes, without the
    routing metadata) and ``router`` (the metadata, as ``response.router``)."""

    body: bytes
    router: dict[str, Any]


class JsonEventStream:
    """A routed stream as the gateway sends it: iterate for each event's JSON (bytes, without the
    SSE framing; a stream that broke after its first token ends with ``{"error": {...}}``).
    ``router``: the metadata (``cost_usd`` and ``status`` filled in when it ends)."""

    def __init__(self, stream: AsyncRoutedStream, transport: ChatTransport):
        self._stream, self._transport = stream, transport
        self.router = stream.router

    async def __aiter__(self) -> AsyncIterator[bytes]:
        to_json = self._transport.chunk_json
        async for chunk in self._stream:
            yield to_json(chunk)

    async def aclose(self) -> None:
        await self._stream.aclose()


class AsyncRoutedClient(_Base):
    """The ``async``/``await`` twin of :class:`RoutedClient` (same arguments; ``sleep`` is a
    coroutine function, ``asyncio.sleep`` by default; ``async_clients`` are ``openai.AsyncOpenAI``)."""

    _default_sleep = staticmethod(asyncio.sleep)

    @classmethod
    def _from_shared(cls, shared: _Shared, sleep: Callable[[float], Any] = asyncio.sleep) -> AsyncRoutedClient:
        self = cls.__new__(cls)
        self._shared = shared
        self._sleep = sleep
        self.chat = _Chat(self._create)
        return self

    async def aclose(self) -> None:
        """Close the transport's connections made in the running event loop."""
        await self._shared.transport.aclose()

    close = aclose

    async def __aenter__(self) -> AsyncRoutedClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _run(self, kwargs: Mapping[str, Any], request_id: str | None,
                   client_tag: str | None) -> tuple[RequestState, str, Any]:
        sh = self._shared
        m = sh.machine
        st = m.start(kwargs, request_id or new_request_id(), client_tag)
        try:
            decision = None
            # the regex router on a small prompt routes in microseconds: on the loop; a learned
            # router (it embeds) or a big prompt goes to a worker thread, keeping the loop free
            light = sh.light_routing and st.parsed.prompt_tokens <= LIGHT_ROUTING_TOKENS
            if st.auto:
                decision = m.first_route(st) if light else await asyncio.to_thread(m.first_route, st)
            model, outcome = await drive_async(m.run(st, decision), sh.transport, sh.providers, self._sleep,
                                               light)
        except BaseException as exc:
            cancelled = isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt))
            log_failure(m.usage, st, exc, "cancelled" if cancelled else "error")
            raise
        return st, model, outcome

    def _stream(self, st: RequestState, model: str, opened: Any) -> AsyncRoutedStream:
        sh = self._shared
        info = meta(st, model, None)
        return AsyncRoutedStream(async_chunks(opened, Tally(sh.machine, sh.transport, st, model, info)), info)

    async def _create(self, kwargs: Mapping[str, Any]) -> Any:
        st, model, outcome = await self._run(kwargs, None, None)
        if not st.stream:
            return _finish(self._shared.machine, st, model, outcome)
        return self._stream(st, model, outcome)

    # -- the gateway's interface -------------------------------------------------------------
    async def create_json(self, body: Mapping[str, Any], *, request_id: str | None = None,
                          client_tag: str | None = None) -> JsonCompletion:
        """A non-streaming chat completion (``body``: the request, as JSON decoded) -> its JSON.

        ``request_id``: the id to log under (default: a new one); ``client_tag``: who asked."""
        if body.get("stream"):
            raise InvalidRequestError("stream: true: use stream_json")
        st, model, outcome = await self._run(body, request_id, client_tag)
        answer = _finish(self._shared.machine, st, model, outcome)
        return JsonCompletion(self._shared.transport.completion_json(answer), answer.router)

    async def stream_json(self, body: Mapping[str, Any], *, request_id: str | None = None,
                          client_tag: str | None = None) -> JsonEventStream:
        """A streaming chat completion (``body`` with ``stream: true``) -> its events' JSON."""
        if not body.get("stream"):
            raise InvalidRequestError("stream_json needs stream: true")
        st, model, outcome = await self._run(body, request_id, client_tag)
        return JsonEventStream(self._stream(st, model, outcome), self._shared.transport)

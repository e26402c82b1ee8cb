"""One request's keyword arguments, parsed and validated once: the model (``auto``,
``auto:<tier>`` or a catalog model), routing options, what is sent upstream, and the
:class:`RequestState` the retry machine works on."""

from __future__ import annotations

import inspect
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...errors import InvalidRequestError
from ...policy import Constraints
from ...text.request import ParsedRequest, parse_request
from .learning import CascadeRequest, parse_escalate, parse_explore

__all__ = ["AUTO_MODELS", "OPTION_KEYS", "TOOL_PARAMS", "RequestState", "parse_options", "new_request_id",
           "needs_tools"]

#: The model names that ask for routing.
AUTO_MODELS = ("auto", "auto:budget", "auto:balanced", "auto:quality")
#: Routing options a request may carry (keyword arguments or ``extra_body["router"]``).
OPTION_KEYS = frozenset({"max_cost", "min_quality", "max_quality_gap", "tier", "escalate", "explore", "deadline"})
_TOP_LEVEL_OPTIONS = ("max_cost", "min_quality", "max_quality_gap", "deadline")
#: Parameters that make a request need a model with the ``tools`` capability.
TOOL_PARAMS = ("tools", "tool_choice", "functions", "function_call")


def new_request_id() -> str:
    """A new request id: ``req_`` and 32 hex digits."""
    return f"req_{uuid.uuid4().hex}"


_KNOWN: frozenset[str] | None = None


def _known_params() -> frozenset[str]:
    """The parameters of the SDK's ``chat.completions.create`` (what is not one travels in
    ``extra_body``)."""
    global _KNOWN
    if _KNOWN is None:
        from openai.resources.chat.completions import Completions

        _KNOWN = frozenset(p for p in inspect.signature(Completions.create).parameters if p != "self")
    return _KNOWN


@dataclass
class RequestState:
    """One request, from parsing to its log row."""

    request_id: str
    requested_model: str
    auto: bool
    model: str | None  # the named model (pass-through), canonical
    tier: str | None
    constraints: Constraints  # validated routing options
    escalate: bool  # the request did not say ``escalate: false``
    params: dict[str, Any]  # what is sent upstream, before per-model adaptation
    parsed: ParsedRequest
    messages: Sequence[Any]
    stream: bool
    caller_usage: bool  # the caller asked for the usage chunk
    timeout: float | None
    client_tag: str | None
    t0: float = field(default_factory=time.perf_counter)
    created_at: float = field(default_factory=time.time)
    decision: Any = None
    chain: list[dict[str, Any]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    tried: list[str] = field(default_factory=list)
    cost: float = 0.0
    escalated: bool = False
    last: Any = None  # the last Failure
    adapted: dict[str, tuple[dict[str, Any], list[str]]] = field(default_factory=dict)
    # the learning loop (see .learning): the cascade asked for, the exploration opt-out, the
    # exploration draw, the router (and its version) that decided, what the log row keeps
    cascade: CascadeRequest | None = None
    explore: bool = True
    explored: Any = None  # router.learning.Explored: the model routed to first and its propensity
    router: Any = None
    router_version: str | None = None
    classifier_text: str | None = None
    answer: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)  # the cascade's steps
    deadline: float | None = None  # seconds for the whole request (all attempts and fallbacks)
    needs_tools: bool = False  # the request carries tools: only tools-capable models may serve it
    deadline_at: float | None = None  # time.monotonic() when the deadline passes (set by the machine)

    @property
    def max_cost(self) -> float | None:
        return self.constraints.max_cost

    @property
    def max_tokens(self) -> int | None:
        return self.constraints.max_tokens


def _router_options(kw: dict[str, Any], extra_body: dict[str, Any] | None) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for src in (extra_body.pop("router", None) if extra_body else None, kw.pop("router", None)):
        if src is None:
            continue
        if not isinstance(src, Mapping):
            raise InvalidRequestError("the 'router' options must be an object", param="router")
        opts.update(src)
    for k in (*_TOP_LEVEL_OPTIONS, "explore"):
        if k in kw:
            opts[k] = kw.pop(k)
    unknown = set(opts) - OPTION_KEYS
    if unknown:
        raise InvalidRequestError(f"unknown router option(s) {sorted(unknown)}; known: {sorted(OPTION_KEYS)}", param="router")
    for k in _TOP_LEVEL_OPTIONS:  # Constraints checks ranges; a bool is not a number here
        if isinstance(opts.get(k), bool):
            raise InvalidRequestError(f"router option {k} must be a number, got {opts[k]!r}", param=k)
    d = opts.get("deadline")
    if d is not None and not (isinstance(d, (int, float)) and math.isfinite(d) and d > 0):
        raise InvalidRequestError(f"deadline must be a positive number of seconds, got {d!r}", param="deadline")
    return opts


def needs_tools(params: Mapping[str, Any]) -> bool:
    """Whether a request carries tools (``tools``, ``functions``, or a ``tool_choice`` /
    ``function_call`` other than ``"none"``)."""
    for k in TOOL_PARAMS:
        v = params.get(k)
        if v is not None and v != "none" and v != []:
            return True
    return False


def _check_values(kw: Mapping[str, Any]) -> None:
    """Reject what the provider cannot be sent: a non-finite number (``NaN`` is not JSON) and a
    ``stream_options`` that is not an object."""
    for k, v in kw.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise InvalidRequestError(f"'{k}' must be a finite number, got {v!r}", param=k)
    so = kw.get("stream_options")
    if so is not None and not isinstance(so, Mapping):
        raise InvalidRequestError(f"'stream_options' must be an object, got {type(so).__name__}", param="stream_options")


def parse_options(kwargs: Mapping[str, Any], *, request_id: str, client_tag: str | None, catalog: Any,
                  tiers: Mapping[str, float], escalate_default: Any = "checks") -> RequestState:
    """Validate ``kwargs`` (what ``chat.completions.create`` was given) -> :class:`RequestState`.

    Raises :class:`InvalidRequestError` (naming the field) or ``UnknownModelError``; the routing
    constraints are checked here, once, by :class:`~router.policy.Constraints`. ``escalate``
    (:func:`~.learning.parse_escalate`) defaults to ``escalate_default``."""
    kw = dict(kwargs)
    model = kw.pop("model", None)
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequestError("'model' is required: a catalog model, 'auto' or 'auto:<tier>'", param="model")
    messages = kw.get("messages")
    if messages is None:
        raise InvalidRequestError("'messages' is required", param="messages")
    if isinstance(messages, (str, bytes, bytearray)) or not isinstance(messages, Sequence):
        raise InvalidRequestError(f"'messages' must be a list of message objects, got {type(messages).__name__}", param="messages")
    parsed = parse_request(messages)
    _check_values(kw)

    extra_body = kw.pop("extra_body", None)
    if extra_body is not None:
        if not isinstance(extra_body, Mapping):
            raise InvalidRequestError("extra_body must be an object")
        extra_body = dict(extra_body)
    opts = _router_options(kw, extra_body)

    name = model.strip()
    auto = name == "auto" or name.startswith("auto:")
    canonical = None
    tier = opts.get("tier")
    if auto:
        if name.startswith("auto:"):
            tier = name[5:]
            if not tier:
                raise InvalidRequestError("'auto:' needs a tier, e.g. 'auto:budget'", param="model")
        if tier is not None and tier not in tiers:
            raise InvalidRequestError(f"unknown tier {tier!r}; known: {sorted(tiers)}", param="model")
    else:
        canonical = catalog.resolve(name)  # UnknownModelError

    constraints = Constraints(tier=tier, min_quality=opts.get("min_quality"), max_cost=opts.get("max_cost"),
                              max_quality_gap=opts.get("max_quality_gap"),
                              max_tokens=kw.get("max_completion_tokens", kw.get("max_tokens")))
    escalate, cascade = parse_escalate(opts.get("escalate", escalate_default))
    explore = parse_explore(opts.get("explore", True))
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
    return RequestState(
        request_id=request_id, requested_model=name, auto=auto, model=canonical, tier=tier,
        constraints=constraints, escalate=escalate, params=params, parsed=parsed,
        messages=messages, stream=stream, caller_usage=caller_usage, timeout=timeout, client_tag=client_tag,
        cascade=cascade, explore=explore,
        deadline=opts.get("deadline"), needs_tools=needs_tools(params) or needs_tools(params.get("extra_body") or {}),
    )

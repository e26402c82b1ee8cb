"""The routed client: an OpenAI-SDK-shaped client that routes, retries, falls back, escalates and
logs (:mod:`.client`), over an injected :class:`ChatTransport` (:class:`SDKTransport`, the
reference, or :class:`RawTransport`, its own httpx client and SSE parser).

Modules, one job each: :mod:`.client` (the SDK-shaped facade and the gateway's interface),
:mod:`.policies` (retry, escalation, cooldowns), :mod:`.options` (parsing a request once),
:mod:`.adapt` (per-model adaptation), :mod:`.providers` (endpoints and keys),
:mod:`.transport` / :mod:`.sdk_transport` / :mod:`.raw_transport` / :mod:`.sse` /
:mod:`.json_view` (sending), :mod:`.failures` (what a failure means), :mod:`.machine` (the
sans-I/O retry / fallback / escalation core), :mod:`.records` (metadata and the usage log),
:mod:`.streams` (stream bookkeeping), :mod:`.drivers` (the sync and async drivers).
"""

from typing import Any

from .client import AsyncRoutedClient, JsonCompletion, JsonEventStream, RoutedClient
from .json_view import JsonView, RawChunk, RawCompletion
from .options import AUTO_MODELS, new_request_id
from .policies import DEFAULT_CHECKS, EscalationPolicy, RetryPolicy, code_placeholder, reasoning_uncertainty
from .sdk_transport import SDKTransport
from .streams import AsyncRoutedStream, RoutedStream
from .transport import ChatCall, ChatTransport, Endpoint

__all__ = [
    "RoutedClient",
    "AsyncRoutedClient",
    "RoutedStream",
    "AsyncRoutedStream",
    "JsonCompletion",
    "JsonEventStream",
    "RetryPolicy",
    "EscalationPolicy",
    "code_placeholder",
    "reasoning_uncertainty",
    "DEFAULT_CHECKS",
    "AUTO_MODELS",
    "new_request_id",
    "ChatTransport",
    "ChatCall",
    "Endpoint",
    "SDKTransport",
    "RawTransport",
    "JsonView",
    "RawCompletion",
    "RawChunk",
]


def __getattr__(name: str) -> Any:
    """:class:`RawTransport` imports httpx (~200 modules, ~0.1 s): it is loaded when first asked
    for (the gateway does), not by ``import router``."""
    if name == "RawTransport":
        from .raw_transport import RawTransport

        return RawTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

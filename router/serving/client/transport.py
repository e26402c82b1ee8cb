"""What the client needs of a transport: send one chat completion to one endpoint.

A :class:`ChatTransport` is handed to :class:`~router.serving.client.RoutedClient` (like
httpx's ``transport=``). Two ship with the package: :class:`~.sdk_transport.SDKTransport` (the
openai SDK, the reference; library users get SDK objects) and
:class:`~.raw_transport.RawTransport` (its own httpx client and SSE parser; answers are the
provider's JSON, read through :class:`~.json_view.JsonView`). Both raise
:class:`~router.errors.UpstreamError` (with ``kind``, ``status_code``, ``retry_after``,
``upstream_message``) for every provider failure, so retries and fallback do not depend on which
transport is used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ...errors import UpstreamError

__all__ = ["Endpoint", "ChatCall", "ChatTransport", "ChunkStream", "AsyncChunkStream"]


@dataclass(frozen=True)
class Endpoint:
    """One OpenAI-compatible endpoint: ``base_url`` (``.../v1``) and its key.

    ``api_key`` is ``None`` when the variable named ``key_env`` is unset; :meth:`key` then raises
    an :class:`UpstreamError` of kind ``config``. The key never appears in ``repr``."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    key_env: str | None = None

    def key(self) -> str:
        if self.api_key is None:
            raise UpstreamError(f"no API key: ${self.key_env} is not set", kind="config")
        return self.api_key


@dataclass(frozen=True)
class ChatCall:
    """One attempt: the request ``params`` as the SDK's ``create`` takes them (``extra_body``
    holds what the SDK does not know), for ``model`` at ``endpoint``, with a ``timeout`` in
    seconds (``None``: the transport's default)."""

    model: str
    params: Mapping[str, Any]
    endpoint: Endpoint
    timeout: float | None = None


class ChunkStream(Protocol):
    """An open stream of chunks (sync)."""

    def __iter__(self) -> Iterator[Any]: ...

    def close(self) -> None: ...


class AsyncChunkStream(Protocol):
    """An open stream of chunks (async)."""

    def __aiter__(self) -> AsyncIterator[Any]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ChatTransport(Protocol):
    """Sends chat completions. Every provider failure raises :class:`UpstreamError` (when the
    request is sent, or while a stream is read); anything else is a bug and propagates.

    Answers and chunks are read by attribute (``choices``, ``usage``, ``delta``...) like the
    openai SDK's objects; :meth:`completion_json` / :meth:`chunk_json` turn them into the JSON
    the gateway sends. :meth:`error_chunk` builds the last chunk of a stream that broke after its
    first token (``choices`` empty, ``error`` an OpenAI-style error object)."""

    def complete(self, call: ChatCall) -> Any: ...

    def stream(self, call: ChatCall) -> ChunkStream: ...

    async def acomplete(self, call: ChatCall) -> Any: ...

    async def astream(self, call: ChatCall) -> AsyncChunkStream: ...

    def completion_json(self, completion: Any) -> bytes: ...

    def chunk_json(self, chunk: Any) -> bytes: ...

    def error_chunk(self, *, id: str, created: int, model: str, error: dict[str, Any]) -> Any: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...

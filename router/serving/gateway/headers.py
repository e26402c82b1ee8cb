"""A bound on request headers for uvicorn's fast (httptools) HTTP protocol.

uvicorn caps unfinished headers only on its h11 protocol (``h11_max_incomplete_event_size``);
httptools (llhttp) has no cap of its own, so a client could send megabytes of headers that are
never finished (8 such clients took a gateway from 117 MB to 437 MB). This protocol is uvicorn's
httptools protocol plus one count: the bytes received while a request's headers are unfinished;
past the limit it answers 431 and closes the connection. It reads the limit from the same uvicorn
setting, so one number (``router serve --max-header-bytes``) bounds both protocols, and it travels
to ``--workers`` processes with uvicorn's config.

The cost is one comparison per ``data_received`` (BENCHMARKS.md: within the noise of the
pass-through overhead).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["BoundedHttpToolsProtocol", "DEFAULT_MAX_HEADER_BYTES", "uvicorn_header_settings"]

#: The default bound on a request's headers (bytes): far above any real client's few KB.
DEFAULT_MAX_HEADER_BYTES = 64 * 1024

_BODY = json.dumps({"error": {"message": "request headers are too large", "type": "invalid_request_error",
                              "param": None, "code": "headers_too_large"}}).encode()
_431 = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
        b"connection: close\r\ncontent-length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing requests whose headers pass
    ``config.h11_max_incomplete_event_size`` bytes (431, connection closed)."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any):
        super().__init__(config, *args, **kwargs)
        self._max_header_bytes = int(config.h11_max_incomplete_event_size or DEFAULT_MAX_HEADER_BYTES)
        self._header_open = True  # the next bytes belong to a request's headers
        self._header_bytes = 0
        self._own_transport: asyncio.Transport | None = None

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        self._own_transport = transport
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._header_open:
            self._header_bytes += len(data)
        super().data_received(data)
        if self._header_open and self._header_bytes > self._max_header_bytes:
            t = self._own_transport
            if t is not None and not t.is_closing():
                t.write(_431)
                t.close()

    def on_headers_complete(self) -> None:
        self._header_open = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._header_open, self._header_bytes = True, 0


def uvicorn_header_settings(max_header_bytes: int) -> dict[str, Any]:
    """The ``uvicorn.run`` keyword arguments that bound headers to ``max_header_bytes`` on both
    of uvicorn's HTTP/1.1 protocols (the bounded httptools one is used)."""
    if max_header_bytes < 1024:
        raise ValueError(f"max_header_bytes must be at least 1024, got {max_header_bytes}")
    return {"http": BoundedHttpToolsProtocol, "h11_max_incomplete_event_size": int(max_header_bytes)}

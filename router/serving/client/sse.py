"""A sans-I/O server-sent-events decoder (the WHATWG event-stream format): feed bytes, get events.

::

    dec = SSEDecoder()
    for chunk in body_chunks:
        for event in dec.feed(chunk):
            event.data, event.event
    dec.flush()   # the body ended: an event not terminated by a blank line is dropped

Lines end in ``\\n``, ``\\r\\n`` or ``\\r`` (also split across chunks); ``data`` lines are joined
with ``\\n``; comment lines (``:...``) and unknown fields are ignored; one space after the colon
is dropped. Only complete events (ended by a blank line) are returned.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent"]


@dataclass(frozen=True)
class ServerSentEvent:
    data: str
    event: str | None = None
    id: str | None = None


class SSEDecoder:
    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """The events completed by ``chunk``."""
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            if buf.endswith(b"\r"):  # maybe half of a \r\n: wait for the next chunk
                buf, self._buf = buf[:-1], b"\r"
            else:
                self._buf = b""
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if self._buf == b"\r" and not buf:
                return []
        else:
            self._buf = b""
        events: list[ServerSentEvent] = []
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            line = buf[start:end]
            start = end + 1
            if not line:
                if self._data:
                    events.append(ServerSentEvent("\n".join(self._data), self._event, self._id))
                self._data, self._event = [], None
                continue
            self._line(line)
        rest = buf[start:]
        if rest:
            self._buf = rest + self._buf
        return events

    def _line(self, line: bytes) -> None:
        if line[:1] == b":":
            return
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        text = value.decode("utf-8", "replace")
        if name == b"data":
            self._data.append(text)
        elif name == b"event":
            self._event = text
        elif name == b"id":
            self._id = text

    def flush(self) -> list[ServerSentEvent]:
        """At the end of the body: the events a final ``\r`` completes (held back in case a
        ``\n`` followed); a partial event (no blank line after it) is dropped."""
        events = self.feed(b"\n") if self._buf.endswith(b"\r") else []
        self._buf, self._data, self._event = b"", [], None
        return events

"""The raw transport's answers: the provider's JSON, read by attribute like the SDK's objects."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["JsonView", "RawCompletion", "RawChunk", "json_view"]


def json_view(value: Any) -> Any:
    """``value`` with JSON objects (also inside arrays) seen through :class:`JsonView`."""
    if isinstance(value, dict):
        return JsonView(value)
    if isinstance(value, list):
        return [json_view(v) for v in value]
    return value


class JsonView:
    """Attribute access over a provider's JSON object, so the bookkeeping (usage, text, chunk
    checks) reads raw answers as it reads SDK objects: nested objects are viewed the same way, a
    missing key reads as None. ``data`` is the object itself."""

    __slots__ = ("data",)

    def __init__(self, data: dict[str, Any]):
        self.data = data

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # private and dunder lookups (copy, pickle) are not JSON keys
            raise AttributeError(name)
        return json_view(self.data.get(name))


class RawCompletion(JsonView):
    """A non-streaming answer kept as the provider's JSON: ``data`` the parsed object, ``body``
    the bytes as received, ``router`` the routing metadata (set by the client)."""

    __slots__ = ("body", "router")

    def __init__(self, data: dict[str, Any], body: bytes):
        super().__init__(data)
        self.body = body
        self.router: dict[str, Any] | None = None

    def json_bytes(self) -> bytes:
        """The answer as JSON: the provider's bytes, unless they carry a ``router`` key."""
        if "router" in self.data:
            return json.dumps({k: v for k, v in self.data.items() if k != "router"}, ensure_ascii=False).encode()
        return self.body


class RawChunk(JsonView):
    """One stream event: ``data`` the provider's JSON (parsed for the bookkeeping), ``text`` its
    exact text, forwarded as it came."""

    __slots__ = ("text",)

    def __init__(self, data: dict[str, Any], text: str):
        super().__init__(data)
        self.text = text

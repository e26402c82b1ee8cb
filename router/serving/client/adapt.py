"""Per-model adaptation of a request: drop the catalog's ``unsupported_params``, clip the output
token limit to ``max_output_tokens``, strip image parts for a model without vision, and ask
streaming providers for the usage chunk. Tools (``tools``, ``tool_choice``, ``functions``,
``function_call``) are never dropped: routing sends a request with tools only to a tools-capable
model, and a named model gets them as sent (its provider may refuse them, visibly)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...text.request import IMAGE_PART_TYPES

__all__ = ["adapt_params", "strip_images"]

#: Never dropped: losing them silently changes what the answer is (a text reply, not a tool call).
_KEEP = frozenset({"tools", "tool_choice", "functions", "function_call"})


def _is_image(part: Any) -> bool:
    return isinstance(part, Mapping) and part.get("type") in IMAGE_PART_TYPES


def strip_images(messages: Sequence[Any]) -> list[Any]:
    """``messages`` without image parts (a message left empty says ``[image omitted]``); the
    caller's messages are not modified."""
    out = []
    for m in messages:
        content = m.get("content") if isinstance(m, Mapping) else None
        if isinstance(content, list) and any(_is_image(p) for p in content):
            kept = [p for p in content if not _is_image(p)]
            m = dict(m)
            m["content"] = kept or [{"type": "text", "text": "[image omitted]"}]
        out.append(m)
    return out


def adapt_params(params: Mapping[str, Any], spec: Any, *, has_images: bool,
                 stream_usage: bool) -> tuple[dict[str, Any], list[str]]:
    """(the parameters sent to ``spec``'s model, notes on what was changed)."""
    p = dict(params)
    p["model"] = spec.name
    notes: list[str] = []
    for name in sorted((spec.unsupported_params & p.keys()) - _KEEP):
        p.pop(name)
        notes.append(f"dropped {name}")
    for key in ("max_tokens", "max_completion_tokens"):
        v = p.get(key)
        if isinstance(v, int) and v > spec.max_output_tokens:
            p[key] = spec.max_output_tokens
            notes.append(f"{key} {v} -> {spec.max_output_tokens}")
    if has_images and not spec.vision:
        p["messages"] = strip_images(p["messages"])
        notes.append("removed image parts")
    if stream_usage:
        so = dict(p.get("stream_options") or {})
        so["include_usage"] = True
        p["stream_options"] = so
    return p, notes

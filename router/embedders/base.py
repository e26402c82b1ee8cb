"""The embedder protocol and what every embedder shares: the prompt clipping and its version.

``Embedder``: ``name`` (a stable id, the cache key), ``encode`` (n texts -> array (n, dim)) and
``to_config`` (a dict :func:`router.embedders.make_embedder` rebuilds it from).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..text.views import CONTEXT_MARK

__all__ = ["Embedder", "clip_text", "CLIP_VERSION", "DEFAULT_EMBEDDER"]

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
_MAX_CHARS, _HEAD, _TAIL = 1000, 600, 380
#: Part of every embedder's cache key: change it when clip_text changes.
CLIP_VERSION = "clip1000"


def clip_text(text: str) -> str:
    """Keep the head and the tail of long prompts: the ask is usually at one end, and encoders
    truncate (MiniLM at 256 word pieces, about 1,000 characters), so a pasted document would
    otherwise hide an instruction at its end. Also bounds the cost of embedding long prompts.
    Drops the Router's invisible context mark (:data:`router.text.views.CONTEXT_MARK`)."""
    text = text.replace(CONTEXT_MARK, "")
    if len(text) <= _MAX_CHARS:
        return text
    return text[:_HEAD] + "\n...\n" + text[-_TAIL:]


@runtime_checkable
class Embedder(Protocol):
    """``name``: a stable id (used as the cache key). ``encode``: n texts -> array (n, dim)."""

    name: str

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray: ...

    def to_config(self) -> dict[str, Any]: ...

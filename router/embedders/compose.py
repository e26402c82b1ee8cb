"""Composing embedders: several side by side (:class:`ConcatEmbedder`). The text views wrapper
lives in :mod:`router.text.views` (:class:`~router.text.views.ViewsEmbedder`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import Embedder

__all__ = ["ConcatEmbedder"]


class ConcatEmbedder:
    """Concatenate several embedders' outputs (each part already L2-normalised)."""

    def __init__(self, parts: Sequence[Embedder]):
        self.parts = list(parts)

    @property
    def name(self) -> str:
        return "+".join(p.name for p in self.parts)

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        return np.hstack([p.encode(texts, show_progress=show_progress) for p in self.parts])

    def to_config(self) -> dict[str, Any]:
        return {"type": "concat", "parts": [p.to_config() for p in self.parts]}

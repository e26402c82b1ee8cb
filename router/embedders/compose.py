"""Composing embedders: several side by side (:class:`ConcatEmbedder`), and one embedder's
vectors of a text next to its vectors of the text's views (:class:`ViewsEmbedder`).

:class:`ViewsEmbedder` wraps any embedder: ``encode(texts)`` -> array (n, dim * (1 + len(views)))
= [whole text, view 1, view 2, ...] (views: :mod:`router.text.views`). All texts and views of a
call go to the inner embedder in one deduplicated batch, so a one-sentence prompt costs one
embedding, not three.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..text.views import DEFAULT_VIEWS, VIEWS, text_view
from .base import Embedder

__all__ = ["ConcatEmbedder", "ViewsEmbedder"]


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


class ViewsEmbedder:
    """``inner``'s embedding of each text next to its embeddings of the named views."""

    def __init__(self, inner: Embedder, views: Sequence[str] = DEFAULT_VIEWS):
        unknown = [v for v in views if v not in VIEWS]
        if unknown:
            raise ValueError(f"unknown text views {unknown}; choose from {sorted(VIEWS)}")
        self.inner = inner
        self.views = tuple(views)

    @property
    def name(self) -> str:
        return f"{self.inner.name}@{','.join(self.views)}"

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        texts = list(texts)
        columns = [texts] + [[text_view(v, t) for t in texts] for v in self.views]
        unique = list(dict.fromkeys(s for col in columns for s in col))
        vecs = self.inner.encode(unique, show_progress=show_progress)
        if not texts:
            dim = vecs.shape[1] if vecs.ndim == 2 else 0
            return np.zeros((0, dim * len(columns)), dtype=np.float32)
        row = {s: i for i, s in enumerate(unique)}
        return np.hstack([vecs[[row[s] for s in col]] for col in columns]).astype(np.float32)

    def to_config(self) -> dict[str, Any]:
        return {"type": "views", "views": list(self.views), "inner": self.inner.to_config()}

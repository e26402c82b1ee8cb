"""The learned classifier's feature layout: which columns of its matrix hold what.

The feature matrix is ``[embedding of the whole text, embedding of view 1, ..., hand features]``
(:class:`~router.embedders.ViewsEmbedder`, :mod:`router.text.features`). A
:class:`FeatureLayout` names those blocks and their widths; it is saved with the classifier and
checked at load (and against every matrix the heads read), so a router whose embedder, views
or hand features changed fails with the block that differs instead of predicting garbage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ArtifactError
from ..embedders import Embedder, ViewsEmbedder
from ..embedders.cache import uncached
from ..text.features import FEATURE_NAMES

__all__ = ["FeatureLayout", "WHOLE_TEXT", "HAND_FEATURES"]

#: Block names: the whole text's embedding, each view's as ``view:<name>``, the hand features.
WHOLE_TEXT = "text"
HAND_FEATURES = "hand"


@dataclass(frozen=True)
class FeatureLayout:
    """``blocks``: (name, width) in column order; ``hand_features``: the hand block's columns."""

    blocks: tuple[tuple[str, int], ...]
    hand_features: tuple[str, ...] = FEATURE_NAMES

    @classmethod
    def build(cls, embedding_dim: int, views: Sequence[str] = (),
              hand_features: Sequence[str] = FEATURE_NAMES) -> "FeatureLayout":
        """The layout of one embedder's dim ``embedding_dim`` per text, ``views`` and hand features."""
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be positive, got {embedding_dim}")
        blocks = [(WHOLE_TEXT, embedding_dim)] + [(f"view:{v}", embedding_dim) for v in views]
        return cls(tuple(blocks) + ((HAND_FEATURES, len(hand_features)),), tuple(hand_features))

    @classmethod
    def infer(cls, embedder: Embedder, width: int) -> "FeatureLayout":
        """The layout of a ``width``-column matrix from ``embedder`` (its views, if a
        :class:`ViewsEmbedder`, behind the embedding cache or not) and today's hand features."""
        embedder = uncached(embedder)
        views = embedder.views if isinstance(embedder, ViewsEmbedder) else ()
        text_width = width - len(FEATURE_NAMES)
        if text_width < 1 or text_width % (1 + len(views)):
            raise ArtifactError(f"a feature matrix of width {width} does not hold {len(views)} text "
                                f"view(s) and {len(FEATURE_NAMES)} hand features")
        return cls.build(text_width // (1 + len(views)), views)

    @property
    def width(self) -> int:
        return sum(w for _, w in self.blocks)

    @property
    def views(self) -> tuple[str, ...]:
        return tuple(n.split(":", 1)[1] for n, _ in self.blocks if n.startswith("view:"))

    def block(self, name: str) -> slice:
        """The columns of block ``name``."""
        start = 0
        for n, w in self.blocks:
            if n == name:
                return slice(start, start + w)
            start += w
        raise KeyError(f"no feature block {name!r}; blocks: {[n for n, _ in self.blocks]}")

    def check(self, X: np.ndarray, where: str = "feature matrix") -> None:
        """Raise :class:`ArtifactError` unless ``X`` is (n, ``width``)."""
        if X.ndim != 2 or X.shape[1] != self.width:
            raise ArtifactError(f"{where}: shape {X.shape} does not match the feature layout "
                                f"{self.describe()} ({self.width} columns)")

    def describe(self) -> str:
        return " + ".join(f"{n}[{w}]" for n, w in self.blocks)

    def to_dict(self) -> dict[str, Any]:
        return {"blocks": [{"name": n, "width": w} for n, w in self.blocks],
                "hand_features": list(self.hand_features)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "layout") -> "FeatureLayout":
        """Inverse of :meth:`to_dict`; :class:`ArtifactError` naming the invalid field."""
        blocks, hand = data.get("blocks"), data.get("hand_features")
        if not isinstance(blocks, list) or not blocks:
            raise ArtifactError(f"{where}: 'blocks' must be a non-empty list, got {blocks!r}")
        out = []
        for i, b in enumerate(blocks):
            name, width = (b.get("name"), b.get("width")) if isinstance(b, dict) else (None, None)
            if not isinstance(name, str) or isinstance(width, bool) or not isinstance(width, int) or width < 1:
                raise ArtifactError(f"{where}: blocks[{i}] must be {{'name': str, 'width': int > 0}}, got {b!r}")
            out.append((name, width))
        if not isinstance(hand, list) or not all(isinstance(f, str) for f in hand):
            raise ArtifactError(f"{where}: 'hand_features' must be a list of names, got {hand!r}")
        return cls(tuple(out), tuple(hand))

"""Character n-gram hashing: no model to load, for tests and as a fast fallback body."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import CLIP_VERSION, clip_text

__all__ = ["HashingEmbedder"]


class HashingEmbedder:
    """Character n-gram hashing (scikit-learn's ``HashingVectorizer``), L2-normalised.

    No model to load, deterministic, ~0.1 ms a prompt: for tests and as a fast fallback body.
    """

    def __init__(self, n_features: int = 1024):
        self.n_features = n_features

    @property
    def name(self) -> str:
        return f"hashing-{self.n_features}|{CLIP_VERSION}"

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        from sklearn.feature_extraction.text import HashingVectorizer

        vec = HashingVectorizer(n_features=self.n_features, analyzer="char_wb", ngram_range=(2, 4),
                                alternate_sign=False, norm="l2")
        return vec.transform([clip_text(t).lower() for t in texts]).toarray().astype(np.float32)

    def to_config(self) -> dict[str, Any]:
        return {"type": "hashing", "n_features": self.n_features}

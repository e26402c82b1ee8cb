"""Embedding for training and evaluation, in chunks so that long runs report progress."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..embedders import Embedder
from ..progress import ProgressLike, in_chunks
from ..tasks.classifier import featurize

__all__ = ["featurize_with_progress", "CHUNK"]

#: Prompts embedded per call: small enough for a report every few seconds on 2 cores, large
#: enough to keep the encoder's batches full.
CHUNK = 256


def featurize_with_progress(embedder: Embedder, texts: Sequence[str], progress: ProgressLike,
                            desc: str = "embedding", chunk: int = CHUNK) -> np.ndarray:
    """:func:`router.tasks.classifier.featurize`, ``chunk`` texts at a time, each chunk reported
    as a counted step of ``progress``."""
    texts = list(texts)
    if not texts:
        return featurize(embedder, texts)
    parts = in_chunks(lambda part: featurize(embedder, part), texts, progress, desc, chunk)
    return np.vstack(parts)

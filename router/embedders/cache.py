"""A SQLite cache in front of any embedder, keyed by (embedder name, sha256 of the text)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import default_cache_path
from .base import Embedder
from .compose import ConcatEmbedder, GatedEmbedder, ViewsEmbedder

__all__ = ["CachedEmbedder", "with_cache", "uncached"]


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
        cache = default_cache_path()
    if str(cache) in ("", "."):
        return embedder
    if isinstance(embedder, GatedEmbedder):  # each side cached under its own name
        return embedder.with_parts(lambda part: with_cache(part, cache))
    return CachedEmbedder(embedder, cache)


def uncached(embedder: Embedder) -> Embedder:
    """The embedder behind a :class:`CachedEmbedder` (``embedder`` itself when it is not one):
    what the vectors are, for code that asks about an embedder's kind or views while training
    runs it behind the cache."""
    return embedder.inner if isinstance(embedder, CachedEmbedder) else embedder

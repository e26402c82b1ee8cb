"""Composing embedders: several side by side (:class:`ConcatEmbedder`), and one embedder's
vectors of a text next to its vectors of the text's views (:class:`ViewsEmbedder`).

:class:`ViewsEmbedder` wraps any embedder: ``encode(texts)`` -> array (n, dim * (1 + len(views)))
= [whole text, view 1, view 2, ...] (views: :mod:`router.text.views`). All texts and views of a
call go to the inner embedder in one deduplicated batch, so a one-sentence prompt costs one
embedding, not three.

:class:`GatedEmbedder` sends each text to one of two embedders by a language rule
(:mod:`router.text.language`): English text to ``english``, the rest to ``other``. Its rows are
``[english block, other block, gate]`` with the unused block zero, so one head reads both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..text.language import GATE_VERSION, english_mask
from ..text.views import DEFAULT_VIEWS, VIEWS, text_view
from .base import Embedder

__all__ = ["ConcatEmbedder", "ViewsEmbedder", "GatedEmbedder"]


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


class GatedEmbedder:
    """English texts to ``english``, the others to ``other``; each text costs one of the two.

    ``encode(texts)`` -> float32 array (n, d_en + d_other + 1): ``[english vector, 0, 1]`` for a
    text :func:`~router.text.language.looks_english` calls English, ``[0, other vector, 0]``
    otherwise. ``encode_paths`` gives every text's other-side row and the English texts'
    English-side rows, for training a head that serves both sides (see
    :func:`router.training.fit.tasks.fit_task_classifier`).

    ``dims``: (d_en, d_other), learned from the first encode of each side and recorded in
    ``to_config``, so a loaded router never runs a side it has no text for just to learn its
    width."""

    def __init__(self, english: Embedder, other: Embedder, dims: tuple[int, int] | None = None):
        self.english = english
        self.other = other
        self._dims: dict[str, int] = dict(zip(("english", "other"), dims)) if dims else {}

    @property
    def name(self) -> str:
        return f"gated[{GATE_VERSION}]({self.english.name}|{self.other.name})"

    def to_config(self) -> dict[str, Any]:
        cfg = {"type": "gated", "gate": GATE_VERSION, "english": self.english.to_config(),
               "other": self.other.to_config()}
        if len(self._dims) == 2:
            cfg["dims"] = [self._dims["english"], self._dims["other"]]
        return cfg

    def with_parts(self, wrap) -> "GatedEmbedder":
        """The same gate over ``wrap(english)`` and ``wrap(other)`` (e.g. each behind a cache)."""
        out = GatedEmbedder(wrap(self.english), wrap(self.other))
        out._dims = self._dims  # shared: what one learns, the other knows
        return out

    def _side(self, side: str, texts: list[str], show_progress: bool) -> np.ndarray:
        """``side``'s vectors of ``texts`` (m, d); its width learned once, from a probe if need be."""
        if not texts and side in self._dims:
            return np.zeros((0, self._dims[side]), dtype=np.float32)
        emb = self.english if side == "english" else self.other
        vecs = emb.encode(texts or ["."], show_progress=show_progress)
        self._dims[side] = vecs.shape[1]
        return vecs[: len(texts)]

    @staticmethod
    def english_rows(X: np.ndarray) -> np.ndarray:
        """Boolean array (n,): which rows of this embedder's output (n, D) the gate sent to the
        English side (its last column, the gate flag)."""
        return X[:, -1] > 0.5

    @staticmethod
    def _place(out: np.ndarray, rows, vecs: np.ndarray, english: bool) -> None:
        d_en = out.shape[1] - 1 - (0 if english else vecs.shape[1])
        if english:
            out[rows, : vecs.shape[1]] = vecs
            out[rows, -1] = 1.0
        else:
            out[rows, d_en:-1] = vecs

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        texts = list(texts)
        en = english_mask(texts)
        v_en = self._side("english", [t for t, e in zip(texts, en) if e], show_progress)
        v_ot = self._side("other", [t for t, e in zip(texts, en) if not e], show_progress)
        out = np.zeros((len(texts), v_en.shape[1] + v_ot.shape[1] + 1), dtype=np.float32)
        self._place(out, en, v_en, english=True)
        self._place(out, ~en, v_ot, english=False)
        return out

    def encode_paths(self, texts: Sequence[str], *, show_progress: bool = False
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every text through the other side, array (n, D); the indices (k,) of the English
        texts; their rows through the English side, array (k, D). ``encode(texts)`` equals the
        first with the English rows replaced by the third."""
        texts = list(texts)
        idx = np.flatnonzero(english_mask(texts))
        v_ot = self._side("other", texts, show_progress)
        v_en = self._side("english", [texts[i] for i in idx], show_progress)
        width = v_en.shape[1] + v_ot.shape[1] + 1
        X_other = np.zeros((len(texts), width), dtype=np.float32)
        X_en = np.zeros((len(idx), width), dtype=np.float32)
        self._place(X_other, slice(None), v_ot, english=False)
        self._place(X_en, slice(None), v_en, english=True)
        return X_other, idx, X_en

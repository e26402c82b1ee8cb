"""Static token embeddings: a text's vector is the mean (and max) of its tokens' rows in a table.

No transformer runs at encode time, so a decision costs microseconds whatever the prompt's
length (the text is still clipped to its head and tail by :func:`router.embedders.clip_text`, so
tokenising stays bounded too). The table is distilled once from a sentence encoder (each token
embedded alone) and may then be fine-tuned on the task labels; the recipe is
:mod:`router.training.fit.static`.

A static encoder is a folder:

* ``static.json``: ``{"format": 1, "dim": d, "normalize": true, "pooling": "mean" | "mean+max",
  "source": ..., "recipe": ...}``
* ``tokenizer.json``: a ``tokenizers`` tokenizer (no special tokens are added at encode time)
* ``embeddings.npy``: float16 or float32 array (vocab, dim); token weights are folded into the rows

Running it needs only ``tokenizers`` and numpy. ``name`` carries a fingerprint of the files
(``static:<12 hex>``), so caches and saved routers never mix two tables.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArtifactError
from .base import clip_text, files_fingerprint, read_folder_config

__all__ = ["StaticEmbedder", "STATIC_CONFIG", "STATIC_FILES", "static_fingerprint", "write_static"]

STATIC_CONFIG = "static.json"
STATIC_FILES = (STATIC_CONFIG, "tokenizer.json", "embeddings.npy")


def static_fingerprint(folder: str | Path) -> str:
    """sha256 over the folder's files (name and bytes), first 12 hex digits."""
    return files_fingerprint(folder, STATIC_FILES, "static encoder")


def write_static(folder: str | Path, table: np.ndarray, tokenizer_json: str, config: dict[str, Any]) -> Path:
    """Write a static encoder folder atomically (files written under temporary names, then
    renamed). ``table``: array (vocab, dim), stored as float16."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = np.asarray(table)
    if table.ndim != 2:
        raise ValueError(f"table must be 2-D (vocab, dim), got shape {table.shape}")
    cfg = {"format": 1, "dim": int(table.shape[1]), "normalize": True, **config}
    tmp = {name: folder / f".{name}.tmp" for name in STATIC_FILES}
    with open(tmp["embeddings.npy"], "wb") as f:
        np.save(f, table.astype(np.float16))
    tmp["tokenizer.json"].write_text(tokenizer_json)
    tmp[STATIC_CONFIG].write_text(json.dumps(cfg, indent=2) + "\n")
    for name in STATIC_FILES:
        tmp[name].replace(folder / name)
    return folder


class StaticEmbedder:
    """Mean (``pooling: mean``) or mean and max (``mean+max``) of token rows, each L2-normalised:
    texts -> float32 array (n, out_dim), out_dim = dim or 2 * dim.

    ``folder``: a static encoder folder (see the module docstring). ``expected_fingerprint``:
    refuse a folder whose files changed since a router was trained with it."""

    def __init__(self, folder: str | Path, *, expected_fingerprint: str | None = None):
        self.folder = Path(folder)
        cfg_path = self.folder / STATIC_CONFIG
        cfg = read_folder_config(self.folder, STATIC_CONFIG, "static encoder", ("dim",))
        self.config = cfg
        self.dim = int(cfg["dim"])
        self.normalize = bool(cfg.get("normalize", True))
        self.pooling = cfg.get("pooling", "mean")
        if self.pooling not in ("mean", "mean+max"):
            raise ArtifactError(f"{cfg_path}: pooling must be 'mean' or 'mean+max', got {self.pooling!r}")
        self.out_dim = self.dim * (2 if self.pooling == "mean+max" else 1)
        self.fingerprint = static_fingerprint(self.folder)
        if expected_fingerprint is not None and expected_fingerprint != self.fingerprint:
            raise ArtifactError(f"static encoder {self.folder} has fingerprint {self.fingerprint}, "
                                f"but the saved router expects {expected_fingerprint}: not the encoder it was trained with")
        self._lock = threading.Lock()
        self._table: np.ndarray | None = None
        self._tok = None

    @property
    def name(self) -> str:
        return f"static:{self.fingerprint}"

    def to_config(self) -> dict[str, Any]:
        """A saved router copies the folder into its own (:mod:`router.embedders.bundle`)."""
        return {"type": "static", "path": str(self.folder), "fingerprint": self.fingerprint}

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "StaticEmbedder":
        if not isinstance(cfg.get("path"), str) or not cfg["path"]:
            raise ArtifactError("static embedder config lacks its folder's 'path'")
        return cls(cfg["path"], expected_fingerprint=cfg.get("fingerprint"))

    def _load(self):
        with self._lock:
            if self._table is None:
                from tokenizers import Tokenizer

                tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
                tok.no_truncation()
                tok.no_padding()
                table = np.load(self.folder / "embeddings.npy", allow_pickle=False)
                if table.ndim != 2 or table.shape[1] != self.dim:
                    raise ArtifactError(f"{self.folder}/embeddings.npy: shape {table.shape}, "
                                        f"{STATIC_CONFIG} says dim {self.dim}")
                if table.shape[0] < tok.get_vocab_size():
                    raise ArtifactError(f"{self.folder}/embeddings.npy has {table.shape[0]} rows for a "
                                        f"vocabulary of {tok.get_vocab_size()}")
                self._tok = tok
                self._table = table.astype(np.float32)
        return self._tok, self._table

    def table(self) -> np.ndarray:
        """The token table as float32, array (vocab, dim) (loaded on first use)."""
        return self._load()[1]

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The token ids each (clipped) text is embedded from."""
        tok, _ = self._load()
        return [e.ids for e in tok.encode_batch([clip_text(t) for t in texts], add_special_tokens=False)]

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """texts -> float32 array (n, out_dim): the mean of the token rows (``mean+max``: next to
        their element-wise max), each part L2-normalised; a text with no tokens gets zeros."""
        _, table = self._load()
        texts = list(texts)
        parts = [np.zeros((len(texts), self.dim), dtype=np.float32) for _ in range(self.out_dim // self.dim)]
        if texts:
            ids = self.token_ids(texts)
            lens = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
            nonempty = lens > 0
            if nonempty.any():
                flat = np.fromiter((i for row in ids for i in row), dtype=np.int64, count=int(lens.sum()))
                starts = np.zeros(len(ids), dtype=np.int64)
                np.cumsum(lens[:-1], out=starts[1:])
                rows = table[flat]
                parts[0][nonempty] = np.add.reduceat(rows, starts[nonempty], axis=0) / lens[nonempty, None]
                if len(parts) == 2:
                    parts[1][nonempty] = np.maximum.reduceat(rows, starts[nonempty], axis=0)
            if self.normalize:
                for out in parts:
                    norms = np.linalg.norm(out, axis=1, keepdims=True)
                    np.divide(out, norms, out=out, where=norms > 0)
        return parts[0] if len(parts) == 1 else np.hstack(parts)

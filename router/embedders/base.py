"""The embedder protocol and what every embedder shares: the prompt clipping and its version.

``Embedder``: ``name`` (a stable id, the cache key), ``encode`` (n texts -> array (n, dim)) and
``to_config`` (a dict :func:`router.embedders.make_embedder` rebuilds it from).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import ArtifactError
from ..persistence.checks import hash_file
from ..text.views import CONTEXT_MARK

__all__ = ["Embedder", "clip_text", "files_fingerprint", "length_batches", "read_folder_config", "CLIP_VERSION",
           "DEFAULT_EMBEDDER"]

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
_MAX_CHARS, _HEAD, _TAIL = 1000, 600, 380
#: Part of every embedder's cache key: change it when clip_text changes.
CLIP_VERSION = "clip1000"


def clip_text(text: str) -> str:
    """Keep the head and the tail of long prompts: the ask is usually at one end, and encoders
    truncate (MiniLM at 256 word pieces, about 1,000 characters), so a pasted document would
    otherwise hide an instruction at its end. Also bounds the cost of embedding long prompts.
    Drops the Router's invisible context mark (:data:`router.text.views.CONTEXT_MARK`)."""
    text = text.replace(CONTEXT_MARK, "")
    if len(text) <= _MAX_CHARS:
        return text
    return text[:_HEAD] + "\n...\n" + text[-_TAIL:]


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices of rows grouped for a transformer, longest first: a batch ends when it is full or
    the next row is under half as long as its first, so padding at most doubles a row's cost. A
    prompt and its short views (first and last sentence) then run apart, not padded to the whole
    text's length."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < batch_size and 2 * lengths[i] >= lengths[batches[-1][0]]:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def files_fingerprint(folder: str | Path, names: Sequence[str], what: str) -> str:
    """sha256 over the named files of an encoder folder (name and bytes), first 12 hex digits;
    :class:`ArtifactError` naming the missing file (``what``: the kind of folder, for the message)."""
    folder = Path(folder)
    h = hashlib.sha256()
    for name in names:
        p = folder / name
        if not p.is_file():
            raise ArtifactError(f"{what} folder {folder} lacks {name}")
        h.update(name.encode())
        hash_file(p, h)
    return h.hexdigest()[:12]


def read_folder_config(folder: Path, name: str, what: str, required: Sequence[str]) -> dict[str, Any]:
    """An encoder folder's JSON config ``folder/name`` with the ``required`` fields;
    :class:`ArtifactError` naming the file and what is wrong (``what``: the kind of folder)."""
    path = folder / name
    if not path.is_file():
        raise ArtifactError(f"{folder} is not a {what} folder: no {name}")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{path}: invalid JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise ArtifactError(f"{path}: must hold a JSON object")
    for key in required:
        if key not in cfg:
            raise ArtifactError(f"{path}: missing field {key!r}")
    return cfg


@runtime_checkable
class Embedder(Protocol):
    """``name``: a stable id (used as the cache key). ``encode``: n texts -> array (n, dim)."""

    name: str

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray: ...

    def to_config(self) -> dict[str, Any]: ...

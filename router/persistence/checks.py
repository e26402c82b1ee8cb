"""Integrity checks of a router folder: paths confined to it, a SHA-256 manifest of its files,
and typed reads of ``router.json`` fields.

Every file a router folder holds (except ``router.json`` itself) is listed in ``router.json``'s
``manifest`` with its SHA-256 at save time. Loading checks the manifest before any pickle is
read: a file that was changed, removed or added since, a path that leaves the folder (absolute,
``..``, a symlink pointing outside) is an :class:`ArtifactError` naming the file. This protects
against a folder damaged or edited after it was saved; it does not make an untrusted folder
safe, since whoever can write the files can also rewrite the manifest (see the README).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import ArtifactError

__all__ = ["MANIFEST_KEY", "confined", "build_manifest", "verify_manifest", "hash_file", "field", "number", "count",
           "text_list", "mapping", "output_tokens"]

MANIFEST_KEY = "manifest"
_ALGORITHM = "sha256"
_CONFIG_NAME = "router.json"
log = logging.getLogger(__name__)


def confined(folder: Path, name: object, where: str) -> Path:
    """``folder / name`` for a relative file name that stays inside ``folder`` (symlinks resolved);
    :class:`ArtifactError` naming ``where`` (the field) otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise ArtifactError(f"{where}: expected a file name inside the router folder, got {name!r}")
    rel = PurePosixPath(name)
    if rel.is_absolute() or "\\" in name or ".." in rel.parts or ":" in rel.parts[0]:
        raise ArtifactError(f"{where}: {name!r} is not a relative path inside the router folder")
    path = folder / rel
    root, real = folder.resolve(), path.resolve()
    if real != root and root not in real.parents:
        raise ArtifactError(f"{where}: {name!r} leaves the router folder (it resolves to {real})")
    return path


def hash_file(path: Path, h: Any = None) -> Any:
    """Feed ``path``'s bytes, 1 MiB at a time, into the hash ``h`` (default: a new sha256)
    and return it."""
    h = hashlib.sha256() if h is None else h
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h


def _digest(path: Path) -> str:
    return hash_file(path).hexdigest()


def _files(root: Path) -> list[str]:
    """Relative posix names of every file under ``root`` but the top ``router.json``;
    :class:`ArtifactError` for a symlink that leaves the folder."""
    real_root = root.resolve()
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            if p.is_symlink():
                target = p.resolve()
                if target != real_root and real_root not in target.parents:
                    raise ArtifactError(f"{p} is a symlink leaving the router folder (to {target})")
        for name in filenames:
            rel = Path(dirpath, name).relative_to(root).as_posix()
            if rel != _CONFIG_NAME:
                out.append(rel)
    return sorted(out)


def build_manifest(root: Path) -> dict[str, Any]:
    """The manifest of the folder ``root``: ``{"algorithm": "sha256", "files": {name: hex}}``."""
    return {"algorithm": _ALGORITHM, "files": {rel: _digest(root / rel) for rel in _files(root)}}


def verify_manifest(root: Path, manifest: object, where: str) -> None:
    """Check every file of ``root`` against ``manifest`` (``None``: a folder saved before manifests,
    loaded with a logged warning). ``where``: ``router.json``'s path, for messages."""
    present = _files(root)
    if manifest is None:
        log.warning("%s has no manifest (saved by an older version): its files are not checked for "
                    "changes; re-save the router to add one", where)
        return
    if not isinstance(manifest, dict) or manifest.get("algorithm") != _ALGORITHM \
            or not isinstance(manifest.get("files"), dict):
        raise ArtifactError(f"{where}: {MANIFEST_KEY} must be {{'algorithm': 'sha256', 'files': {{name: hex}}}}")
    listed: dict[str, Any] = manifest["files"]
    for name, digest in listed.items():
        path = confined(root, name, f"{where}: {MANIFEST_KEY}.files")
        if not isinstance(digest, str):
            raise ArtifactError(f"{where}: {MANIFEST_KEY}.files[{name!r}] must be a SHA-256 hex string")
        if not path.is_file():
            raise ArtifactError(f"{path} is listed in the {MANIFEST_KEY} of {where} but missing")
        if _digest(path) != digest:
            raise ArtifactError(f"{path} was changed after the router was saved (its SHA-256 differs "
                                f"from the {MANIFEST_KEY} in {where}); re-save or retrain the router")
    extra = [rel for rel in present if rel not in listed]
    if extra:
        raise ArtifactError(f"{root}: file(s) {extra} are not in the {MANIFEST_KEY} of {where} "
                            "(added after the router was saved); remove them or re-save the router")


# -- typed fields of router.json ----------------------------------------------------------------
def field(cfg: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any = ...) -> Any:
    """``cfg[key]`` of type ``kind`` (``default`` when absent, if given)."""
    if key not in cfg:
        if default is ...:
            raise ArtifactError(f"{where}: missing {key!r}")
        return default
    value = cfg[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise ArtifactError(f"{where}: {key!r} must be {names}, got {value!r}")
    return value


def number(cfg: Mapping[str, Any], key: str, where: str, default: float, *, low: float = -math.inf,
           positive: bool = False) -> float:
    """A finite number ``cfg[key]`` >= ``low`` (> 0 when ``positive``)."""
    raw = field(cfg, key, (int, float), where, default)
    value = float(raw) if abs(raw) < 1e300 else math.inf  # float(10**400) would raise OverflowError
    if not math.isfinite(value) or value < low or (positive and value <= 0):
        bound = "> 0" if positive else f">= {low}"
        raise ArtifactError(f"{where}: {key!r} must be a finite number {bound}, got {cfg.get(key)!r}")
    return value


_MAX_COUNT = 2**53  # the largest integer numpy's float64 holds exactly


def count(value: object, what: str) -> int:
    """A non-negative int (not a bool) below 2**53."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_COUNT:
        shown = value if not isinstance(value, int) or abs(value) < 10**30 else f"a {len(str(value))}-digit number"
        raise ArtifactError(f"{what} must be a non-negative integer below 2**53, got {shown!r}")
    return value


def text_list(cfg: Mapping[str, Any], key: str, where: str, default: Any = ...) -> list[str]:
    """A list of strings ``cfg[key]``."""
    value = field(cfg, key, list, where, default)
    if not all(isinstance(v, str) for v in value):
        raise ArtifactError(f"{where}: {key!r} must be a list of strings, got {value!r}")
    return value


def mapping(cfg: Mapping[str, Any], key: str, where: str, default: Any = ...) -> dict[str, Any]:
    """A JSON object ``cfg[key]`` (``None`` counts as empty when a default is given)."""
    if default is not ... and cfg.get(key) is None:
        return dict(default)
    return dict(field(cfg, key, dict, where, default))


def output_tokens(cfg: Mapping[str, Any], where: str) -> dict[str, int | None] | None:
    """A cost model's ``output_tokens``: task -> expected output tokens (int >= 0 or null), or null."""
    value = cfg.get("output_tokens")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ArtifactError(f"{where}: 'output_tokens' must be an object of task -> tokens, got {value!r}")
    for task, n in value.items():
        if n is not None:
            count(n, f"{where}: output_tokens[{task!r}]")
    return value

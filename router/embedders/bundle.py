"""Encoders whose files live in a folder of their own (static tables, fine-tuned transformers)
travel inside the saved router: :func:`bundle_encoders` copies each into the router's folder
and records a path relative to it; :func:`resolve_bundled` turns those back into real paths on
load, refusing any that would leave the folder. A moved or copied router folder keeps working,
and so does one saved with the encoder packaged in this library (``task-minilm``) after an
upgrade ships a different one: the router reads its own copy (28 MB)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ..errors import ArtifactError

__all__ = ["bundle_encoders", "resolve_bundled", "folder_encoders", "BUNDLE_DIR"]

#: Subfolder (of the component's folder) the encoder folders are copied into.
BUNDLE_DIR = "encoders"
_FOLDER_TYPES = ("static", "finetuned")


def _walk(spec: Any, fn) -> Any:
    if isinstance(spec, dict):
        spec = {k: _walk(v, fn) for k, v in spec.items()}
        return fn(spec) if spec.get("type") in _FOLDER_TYPES else spec
    if isinstance(spec, list):
        return [_walk(v, fn) for v in spec]
    return spec


def folder_encoders(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The nodes of an embedder config that name an encoder folder (static tables, fine-tuned
    transformers, packaged or not), in config order."""
    nodes: list[dict[str, Any]] = []
    _walk(spec, lambda node: nodes.append(node) or node)
    return nodes


def bundle_encoders(spec: dict[str, Any], folder: Path) -> dict[str, Any]:
    """A copy of the embedder config ``spec`` in which every encoder folder (given by ``path``,
    or the packaged fine-tuned encoder when a ``finetuned`` node has none) is copied to
    ``folder/encoders/<type>-<fingerprint>`` and named relative to ``folder`` (``"bundled": true``)."""
    from .finetuned import packaged_encoder_dir

    def bundle(node: dict[str, Any]) -> dict[str, Any]:
        if node.get("bundled"):
            return node
        src = node.get("path")
        if not src and node["type"] == "finetuned":
            src = packaged_encoder_dir()
        if not src:
            return node
        rel = f"{BUNDLE_DIR}/{node['type']}-{node.get('fingerprint') or Path(src).name}"
        dest = folder / rel
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".*"))
        return {**node, "path": rel, "bundled": True}

    return _walk(spec, bundle)


def resolve_bundled(spec: dict[str, Any], folder: Path, where: str) -> dict[str, Any]:
    """The inverse of :func:`bundle_encoders`: bundled paths made absolute under ``folder``;
    :class:`ArtifactError` naming ``where`` when one points outside it or is missing."""
    root = folder.resolve()

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        if not node.get("bundled"):
            return node
        rel = node.get("path")
        if not isinstance(rel, str) or not rel:
            raise ArtifactError(f"{where}: embedder: a bundled {node['type']} encoder needs a relative 'path'")
        path = (root / rel).resolve()
        if not path.is_relative_to(root):
            raise ArtifactError(f"{where}: embedder: bundled path {rel!r} leaves the router folder")
        if not path.is_dir():
            raise ArtifactError(f"{where}: embedder: bundled encoder folder {rel!r} is missing")
        return {**node, "path": str(path), "bundled": False}

    return _walk(spec, resolve)

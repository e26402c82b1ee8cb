"""The one place that reads settings from the environment. Nothing here runs at import time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["PROJECT_ROOT", "default_catalog_path", "default_cache_path", "env"]

#: The checkout the package lives in (``router/`` sits at its top level).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def env(environ: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """The environment to read settings from (injectable for tests)."""
    return os.environ if environ is None else environ


def default_catalog_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$ROUTER_CATALOG`` when set, else ``models/catalog.yaml`` of the checkout."""
    value = env(environ).get("ROUTER_CATALOG")
    if value:
        return Path(value)
    return PROJECT_ROOT / "models" / "catalog.yaml"


def default_cache_path(environ: Mapping[str, str] | None = None) -> Path:
    """The embedding cache: ``$ROUTER_CACHE_DIR/embeddings.sqlite``, else ``.cache/`` of the checkout."""
    value = env(environ).get("ROUTER_CACHE_DIR")
    base = Path(value) if value else PROJECT_ROOT / ".cache"
    return base / "embeddings.sqlite"

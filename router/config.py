"""The one place that reads settings from the environment. Nothing here runs at import time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "compute_device",
    "PACKAGE_DIR",
    "project_dir",
    "shared_data_dir",
    "default_catalog_path",
    "default_cache_path",
    "env",
    "secret",
    "router_base_url",
    "router_api_key",
    "default_usage_db",
    "gateway_auth_keys",
    "serve_settings",
    "router_model",
    "mlflow_config_path",
    "router_cache_dir",
    "COLD_START",
]

#: The value of ``--router`` / ``$ROUTER_MODEL`` that asks for the cold-start router by name.
COLD_START = "cold-start"

#: The installed package's folder (its package data: the default catalog).
PACKAGE_DIR = Path(__file__).resolve().parent


def project_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The project a command works in: ``$ROUTER_PROJECT_DIR`` when set, else the current folder.

    Its ``data/`` (labelled prompts), ``mlflow.yaml``, ``.cache/`` and ``artifacts/`` are read and
    written there; the library itself never depends on a checkout."""
    value = env(environ).get("ROUTER_PROJECT_DIR")
    return Path(value) if value else Path.cwd()


def shared_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The shared data folder: ``$ROUTER_SHARED_DATA`` when set, else ``../shared/data`` beside
    the project (it may not exist; callers check)."""
    value = env(environ).get("ROUTER_SHARED_DATA")
    return Path(value) if value else project_dir(environ).parent / "shared" / "data"


def env(environ: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """The environment to read settings from (injectable for tests)."""
    return os.environ if environ is None else environ


def default_catalog_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$ROUTER_CATALOG`` when set, else the catalog shipped with the package
    (``router/catalog/default.yaml``)."""
    value = env(environ).get("ROUTER_CATALOG")
    if value:
        return Path(value)
    return PACKAGE_DIR / "catalog" / "default.yaml"


def default_cache_path(environ: Mapping[str, str] | None = None) -> Path:
    """The embedding cache: ``$ROUTER_CACHE_DIR/embeddings.sqlite``, else ``.cache/`` of the project."""
    value = env(environ).get("ROUTER_CACHE_DIR")
    base = Path(value) if value else project_dir(environ) / ".cache"
    return base / "embeddings.sqlite"


# -- the client and the gateway -------------------------------------------------------------
def secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of the environment variable ``name`` (a provider key), ``None`` when unset or empty.

    Callers pass the variable's *name* (``api_key_env`` of the catalog); the value is read only
    here and only when a provider client is built. It is never logged."""
    value = env(environ).get(name)
    return value or None


def router_base_url(environ: Mapping[str, str] | None = None) -> str | None:
    """``$ROUTER_BASE_URL``: one OpenAI-compatible endpoint for every model (``None`` when unset)."""
    return env(environ).get("ROUTER_BASE_URL") or None


def router_api_key(environ: Mapping[str, str] | None = None) -> str | None:
    """``$ROUTER_API_KEY``: the key of the single endpoint (``None`` when unset)."""
    return secret("ROUTER_API_KEY", environ)


def default_usage_db(environ: Mapping[str, str] | None = None) -> str:
    """The usage log URL: ``$ROUTER_USAGE_DB`` when set, else ``sqlite:///router_usage.db``."""
    return env(environ).get("ROUTER_USAGE_DB") or "sqlite:///router_usage.db"


def gateway_auth_keys(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``$ROUTER_AUTH_KEYS``: comma-separated bearer keys the gateway accepts (empty: no auth)."""
    raw = env(environ).get("ROUTER_AUTH_KEYS") or ""
    return tuple(k.strip() for k in raw.split(",") if k.strip())


def serve_settings(environ: Mapping[str, str] | None = None) -> str | None:
    """``$ROUTER_SERVE_SETTINGS``: the JSON settings ``router serve --workers N`` hands to its
    worker processes (``None`` when unset)."""
    return env(environ).get("ROUTER_SERVE_SETTINGS") or None


# -- which router a command uses (see router.persistence.resolve) ----------------------------
def router_model(environ: Mapping[str, str] | None = None) -> str | None:
    """``$ROUTER_MODEL``: the router every command uses when ``--router`` is not given (a
    folder, a ``models:/`` or ``runs:/`` URI, or ``cold-start``); ``None`` when unset."""
    return env(environ).get("ROUTER_MODEL") or None


def mlflow_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The project's MLflow settings file: ``mlflow.yaml`` of :func:`project_dir`."""
    return project_dir(environ) / "mlflow.yaml"


def router_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where registry versions are kept once downloaded: ``$ROUTER_CACHE_DIR/routers``, else
    ``.cache/routers`` of the project (a version never changes, so one download serves all)."""
    value = env(environ).get("ROUTER_CACHE_DIR")
    base = Path(value) if value else project_dir(environ) / ".cache"
    return base / "routers"


def compute_device(environ: Mapping[str, str] | None = None) -> str:
    """``$ROUTER_DEVICE``: where the embedders run: ``auto`` (default: a GPU when one is present),
    ``cpu`` or ``cuda``. Anything else is an error naming the variable."""
    value = (env(environ).get("ROUTER_DEVICE") or "auto").strip().lower()
    if value not in ("auto", "cpu", "cuda"):
        raise ValueError(f"$ROUTER_DEVICE must be auto, cpu or cuda, got {value!r}")
    return value

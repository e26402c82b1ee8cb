"""Which router a command uses, and loading it.

One precedence for every command, :meth:`router.Router.from_config` and ``RoutedClient``:

1. ``--router`` (a folder, ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/...``, or
   ``cold-start``);
2. ``$ROUTER_MODEL`` (the same forms);
3. the ``router:`` entry of the project's ``mlflow.yaml``, which defaults to
   ``models:/<registered_model>@<champion alias>`` (``models:/llm-router@champion``);
4. the cold-start router (``Router.default()``: catalog priors and the regex).

An alias is resolved to a version once (:func:`pin`; the CLI's ``route`` and ``classify`` reuse
a lookup for a minute, forgotten when ``router promote`` or ``rollback`` moves an alias); a
registry version never changes, so it is downloaded once into ``.cache/routers``
(:func:`router.config.router_cache_dir`) and later loads read the folder without importing mlflow. A sqlite tracking store that does not exist is
reported as such (never created by a lookup).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import config
from ..errors import ArtifactError, DataError

__all__ = ["RouterChoice", "choose_router", "pin", "fetch", "forget_aliases", "DEFAULT_TRACKING_URI", "CLI_ALIAS_MAX_AGE_S"]

#: How long ``router route`` / ``router classify`` reuse an alias lookup (an MLflow import and a
#: store query: seconds per call). ``serve`` and :meth:`Router.from_config` always ask the store.
CLI_ALIAS_MAX_AGE_S = 60.0

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
_ALIAS = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)$")
_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


@dataclass(frozen=True)
class RouterChoice:
    """The router a command should use: ``spec`` (``None``: the cold-start router), where the
    choice came from (``origin``: ``--router``, ``$ROUTER_MODEL``, ``mlflow.yaml`` or
    ``default``) and the tracking store that registry URIs are read from."""

    spec: str | None
    origin: str
    tracking_uri: str

    @property
    def explicit(self) -> bool:
        """Given on the command line (a failure to load it is an error, never a fallback)."""
        return self.origin == "--router"

    def describe(self) -> str:
        return f"{self.spec or config.COLD_START} (from {self.origin})"


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def choose_router(flag: str | None = None, *, mlflow_config: str | Path | None = None,
                  environ: Mapping[str, str] | None = None) -> RouterChoice:
    """Apply the precedence (module docstring); reads settings only, loads nothing."""
    path = Path(mlflow_config) if mlflow_config is not None else config.mlflow_config_path(environ)
    data = _read_yaml(path) if path.is_file() else {}
    tracking = (config.env(environ).get("MLFLOW_TRACKING_URI") or str(data.get("tracking_uri") or "")
                or DEFAULT_TRACKING_URI)
    if flag:
        return RouterChoice(_cold(flag), "--router", tracking)
    from_env = config.router_model(environ)
    if from_env:
        return RouterChoice(_cold(from_env), "$ROUTER_MODEL", tracking)
    if data.get("router"):
        return RouterChoice(_cold(str(data["router"])), f"router: in {path.name}", tracking)
    name = str(data.get("registered_model") or "llm-router")
    alias = str((data.get("aliases") or {}).get("champion") or "champion")
    origin = f"the champion of {path.name}" if path.is_file() else "the default"
    return RouterChoice(f"models:/{name}@{alias}", origin, tracking)


def _cold(spec: str) -> str | None:
    return None if spec.strip() == config.COLD_START else spec


#: Seconds to wait for a tracking server's /health before calling it unreachable (mlflow's own
#: client would retry for minutes).
HEALTH_TIMEOUT_S = 5.0


def _check_store(tracking_uri: str) -> None:
    """Fail fast, naming the store: a sqlite file that does not exist (never let mlflow create
    an empty one), or a tracking server that does not answer."""
    if tracking_uri.startswith("sqlite:///"):
        db = tracking_uri[len("sqlite:///"):]
        if db and db != ":memory:" and not Path(db).is_file():
            raise ArtifactError(f"no MLflow store at {db} (train and register a router first: `router train`)")
    elif tracking_uri.startswith(("http://", "https://")):
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(tracking_uri.rstrip("/") + "/health", timeout=HEALTH_TIMEOUT_S) as resp:
                resp.read()
        except (urllib.error.URLError, OSError) as exc:
            raise ArtifactError(f"MLflow tracking server {tracking_uri} is unreachable: {exc}") from None


def _store_key(tracking_uri: str) -> str:
    return hashlib.sha256(tracking_uri.encode()).hexdigest()[:12]


def _aliases_file(environ: Mapping[str, str] | None) -> Path:
    return config.router_cache_dir(environ) / "aliases.json"


def _read_aliases(environ: Mapping[str, str] | None) -> dict[str, Any]:
    try:
        data = json.loads(_aliases_file(environ).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_aliases(data: dict[str, Any], environ: Mapping[str, str] | None) -> None:
    path = _aliases_file(environ)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".aliases.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except OSError:  # a read-only cache only costs the next lookup
        pass


def forget_aliases(tracking_uri: str, *, environ: Mapping[str, str] | None = None) -> None:
    """Drop what :func:`pin` remembered of ``tracking_uri``'s aliases (``router promote`` and
    ``router rollback`` call this after moving one)."""
    data = _read_aliases(environ)
    if data.pop(_store_key(tracking_uri), None) is not None:
        _write_aliases(data, environ)


def pin(spec: str, tracking_uri: str, *, max_age_s: float = 0.0, environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time) -> str:
    """``models:/NAME@ALIAS`` -> ``models:/NAME/VERSION`` (the version it points at now); any
    other spec unchanged. ``max_age_s > 0``: a lookup made less than that long ago (and not
    since forgotten by a promotion or rollback here) is reused without asking the store."""
    m = _ALIAS.match(spec)
    if not m:
        return spec
    key, now = _store_key(tracking_uri), clock()
    if max_age_s > 0:
        hit = _read_aliases(environ).get(key, {}).get(spec)
        if isinstance(hit, dict) and 0 <= now - float(hit.get("at", -1e18)) < max_age_s:
            return f"models:/{m['name']}/{hit['version']}"
    _check_store(tracking_uri)
    from .registry import alias_version

    version = alias_version(m["name"], m["alias"], tracking_uri)
    data = _read_aliases(environ)
    data.setdefault(key, {})[spec] = {"version": version, "at": now}
    _write_aliases(data, environ)
    return f"models:/{m['name']}/{version}"


def fetch(spec: str, tracking_uri: str, *, environ: Mapping[str, str] | None = None) -> Path:
    """The local router folder of a spec: a folder as is; a registry version from the cache,
    downloading it there (atomically) the first time; other URIs downloaded."""
    if not spec.startswith(("models:/", "runs:/")):
        return Path(spec)
    from .registry import download_router

    m = _VERSION.match(spec)
    if not m:
        _check_store(tracking_uri)
        return download_router(spec, tracking_uri=tracking_uri)
    dest = config.router_cache_dir(environ) / _store_key(tracking_uri) / m["name"] / m["version"]
    if (dest / "router.json").is_file():
        return dest
    _check_store(tracking_uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{m['version']}.", dir=dest.parent))
    try:
        folder = download_router(spec, tmp, tracking_uri=tracking_uri)
        try:
            os.replace(folder, dest)
        except OSError:
            if not (dest / "router.json").is_file():  # not another process that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest

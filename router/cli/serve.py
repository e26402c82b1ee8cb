"""``router serve``: the OpenAI-compatible gateway under uvicorn.

::

    router serve --base-url http://localhost:8001/v1 --api-key-env UPSTREAM_KEY --auth-key sk-gw-1

The router is the configured one (``--router`` > ``$ROUTER_MODEL`` > ``mlflow.yaml`` >
``models:/llm-router@champion``; :mod:`router.persistence.resolve`). It is resolved once, before
any worker starts: an alias becomes a version, every worker loads that version's folder, and the
version is logged. When it cannot load, ``serve`` refuses to start (a registry outage must not
silently downgrade production) unless ``--allow-cold-start``.

``serve`` reads nothing secret from its arguments except ``--auth-key`` (gateway keys; prefer
``$ROUTER_AUTH_KEYS``, which ``ps`` cannot show): the upstream key is read from the variable
named by ``--api-key-env`` (default ``ROUTER_API_KEY``), or per model from the catalog's
``api_key_env`` when no ``--base-url`` / ``$ROUTER_BASE_URL`` is given.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from typing import Any

from ..errors import ArtifactError, DataError, RouterError
from .main import add_output_flags, add_router_flag, non_negative, positive_int, probability, progress
from .stats import safe_url
from ..savings import BASELINE_MODEL
from ..serving.client.machine import DEFAULT_DEADLINE

__all__ = ["register", "cmd_serve", "build_app", "app_from_env", "resolve_for_serve", "serve_version",
           "make_reloader", "open_usage"]


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    from .. import config

    return {
        "router": args.router, "catalog": args.catalog,
        "allow_cold_start": bool(getattr(args, "allow_cold_start", False)),
        "base_url": args.base_url or config.router_base_url(),
        "api_key_env": args.api_key_env,
        "usage_db": None if args.no_usage else (args.usage_db or config.default_usage_db()),
        "store_prompts": bool(args.store_prompts),
        "store_responses": bool(args.store_responses),
        "exploration": float(args.exploration),
        "reload_interval": float(args.reload_interval),
        "usage_journal": None if args.no_usage else args.usage_journal,
        "usage_journal_max_bytes": int(args.usage_journal_max_mb * 1024 * 1024),
        "auth_keys": list(args.auth_key or ()) or list(config.gateway_auth_keys()),
        "timeout": args.timeout, "max_body_bytes": args.max_body_bytes,
        "deadline": args.deadline, "max_header_bytes": args.max_header_bytes,
        "baseline": args.baseline,
    }


def resolve_for_serve(settings: dict[str, Any]) -> tuple[Any, dict[str, Any], str]:
    """Load the configured router once and route one warm-up prompt: (router, settings for
    the workers, a log line).

    The workers' settings name the loaded folder (an alias pinned to its version) or
    ``cold-start``, so every worker serves the same version even if the alias moves meanwhile.
    Raises :class:`ArtifactError` when the configured router cannot load and
    ``allow_cold_start`` is not set."""
    from .. import config
    from ..routing import load_configured

    try:
        resolved = load_configured(settings.get("router"), catalog=settings.get("catalog"),
                                   allow_cold_start=bool(settings.get("allow_cold_start")))
    except ArtifactError as exc:
        raise ArtifactError(f"{exc}; refusing to serve. Fix it, pass --router, or pass --allow-cold-start "
                            "to serve the cold-start router") from None
    try:  # load the encoders now: the first request must not pay for it, nor find them broken
        resolved.router.route("warm-up")
    except RouterError as exc:
        raise ArtifactError(f"the router {resolved.describe()} cannot route: {exc}; refusing to serve") from None
    pinned = dict(settings, router=str(resolved.folder) if resolved.folder is not None else config.COLD_START,
                  **serve_version(resolved))
    return resolved.router, pinned, resolved.describe()


def serve_version(resolved: Any) -> dict[str, Any]:
    """What the workers log and watch: ``router_version`` (a registry ``NAME/VERSION``, a
    folder's fingerprint, or ``cold-start``) and ``watch`` (the alias or folder to check for a
    new champion, with its ``tracking_uri``; ``None`` for a fixed version or the cold start)."""
    from .. import config
    from ..serving.reload import router_version

    spec = resolved.choice.spec
    if resolved.pinned is None or resolved.folder is None:
        return {"router_version": config.COLD_START, "watch": None, "tracking_uri": None}
    if resolved.pinned.startswith("models:/"):
        version = resolved.pinned[len("models:/"):]
        watch = spec if spec != resolved.pinned else None  # an alias moves; a version never does
    elif resolved.pinned.startswith("runs:/"):
        version, watch = resolved.pinned, None
    else:
        version, watch = router_version(resolved.folder), str(resolved.folder)
    return {"router_version": version, "watch": watch, "tracking_uri": resolved.choice.tracking_uri}


def make_reloader(settings: dict[str, Any], swap: Any) -> Any:
    """The champion reloader of ``router serve`` (``None`` when there is nothing to watch):
    checks ``settings["watch"]`` every ``reload_interval`` seconds (0: only on SIGHUP) and calls
    ``swap(router, version)`` when it moved, saying so on stderr."""
    import logging

    from ..persistence.registry import resolve_alias
    from ..routing import load_configured
    from ..serving.reload import ChampionWatcher, Reloader, router_version

    spec, tracking = settings.get("watch"), settings.get("tracking_uri")
    if not spec:
        return None
    interval = float(settings.get("reload_interval") if settings.get("reload_interval") is not None else 60.0)

    def resolve(uri: str) -> str:
        return resolve_alias(uri, tracking) if uri.startswith("models:/") else router_version(uri)

    def on_change(router: Any, version: str) -> None:
        swap(router, version)
        logging.getLogger("router.serve").warning("router serve: now serving router %s (%s)", version, spec)

    watcher = ChampionWatcher(spec, on_change, interval=interval if interval > 0 else 3600.0, resolve=resolve,
                              load=lambda uri: load_configured(uri).router,
                              current=settings.get("router_version"))
    return Reloader(watcher, periodic=interval > 0)


def build_app(settings: dict[str, Any], router: Any = None) -> tuple[Any, Any]:
    """(FastAPI app, usage store or None) from ``router serve``'s settings; ``router``: one
    already loaded (else loaded from ``settings`` like :func:`resolve_for_serve` does)."""
    from .. import config
    from ..serving.gateway import create_app

    if router is None:
        router = resolve_for_serve(settings)[0]
    store = open_usage(settings)
    api_key = None
    if settings.get("base_url"):
        env_name = settings.get("api_key_env") or "ROUTER_API_KEY"
        api_key = config.secret(env_name)
    holder: dict[str, Any] = {}

    def swap(new: Any, version: str) -> None:
        holder["app"].state.client.swap_router(new, version)
        holder["app"].state.router = new

    app = create_app(
        router, usage=store, api_keys=tuple(settings.get("auth_keys") or ()),
        max_body_bytes=int(settings.get("max_body_bytes") or 1_000_000),
        base_url=settings.get("base_url"), api_key=api_key, timeout=float(settings.get("timeout") or 60.0),
        deadline=float(settings.get("deadline") or DEFAULT_DEADLINE),
        baseline_model=settings.get("baseline") or BASELINE_MODEL,
        exploration=float(settings.get("exploration") or 0.0), router_version=settings.get("router_version"),
        watcher=make_reloader(settings, swap),
    )
    holder["app"] = app
    return app, store


def open_usage(settings: dict[str, Any]) -> Any:
    """The usage store of ``router serve``'s settings (None with ``--no-usage``), checked
    writable: :class:`ArtifactError` naming the cause when the database or the journal cannot be
    written (``serve`` refuses to start rather than lose every row)."""
    if not settings.get("usage_db"):
        return None
    from ..serving.usage.store import UsageStore

    try:
        store = UsageStore(settings["usage_db"], store_prompts=bool(settings.get("store_prompts")),
                           store_responses=bool(settings.get("store_responses")),
                           journal=settings.get("usage_journal"),
                           journal_max_bytes=int(settings.get("usage_journal_max_bytes") or 256 * 1024 * 1024))
    except ArtifactError as exc:
        raise ArtifactError(f"{exc}; refusing to serve. Fix it, or pass --no-usage to serve without a usage "
                            "log") from None
    try:
        store.probe_write()
    except ArtifactError as exc:
        store.close()
        raise ArtifactError(f"{exc}; refusing to serve. Fix it, or pass --no-usage to serve without a usage "
                            "log") from None
    return store


def app_from_env() -> Any:
    """uvicorn factory for ``--workers N``: each worker builds its app from ``$ROUTER_SERVE_SETTINGS``."""
    from .. import config

    raw = config.serve_settings()
    if not raw:
        raise DataError("ROUTER_SERVE_SETTINGS is not set: start workers with `router serve --workers N`")
    app, _store = build_app(json.loads(raw))
    return app


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    say = progress(args)
    router, pinned, line = resolve_for_serve(settings)  # before uvicorn: refuse early, once for all workers
    say(f"router serve: {line}")
    import uvicorn

    from ..serving.gateway.headers import uvicorn_header_settings

    common = dict(host=args.host, port=args.port, log_level=args.log_level, access_log=args.access_log,
                  **uvicorn_header_settings(args.max_header_bytes))
    where = settings["base_url"] or "each model's catalog provider"
    say(f"router gateway on http://{args.host}:{args.port}/v1 -> {where}; usage log: "
        f"{safe_url(settings['usage_db']) if settings['usage_db'] else 'off'}"
        f"{'; journal: ' + str(settings['usage_journal']) if settings['usage_journal'] else ''}; "
        f"auth: {'on' if settings['auth_keys'] else 'off'}; workers: {args.workers}; "
        f"exploration: {settings['exploration']:g}; champion reload: "
        + (f"{pinned['watch']} every {settings['reload_interval']:g}s and on SIGHUP" if pinned.get("watch") else "off"))
    if args.workers > 1:
        del router  # each worker loads the pinned folder itself
        probe = open_usage(settings)  # refuse here, once, rather than in every worker
        if probe is not None:
            probe.close()
        os.environ["ROUTER_SERVE_SETTINGS"] = json.dumps(pinned)  # handed to the worker processes
        uvicorn.run("router.cli.serve:app_from_env", factory=True, workers=args.workers, **common)
        return 0
    app, store = build_app(pinned, router)
    try:
        uvicorn.run(app, **common)
    finally:
        if store is not None:
            store.close()
    return 0


# -- registration -----------------------------------------------------------------------------
def _port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number, got {text!r}") from None
    if not 0 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number (0-65535), got {text!r}")
    return v


def _positive_mb(text: str) -> float:
    v = non_negative(text)
    if v * 1024 * 1024 < 1:
        raise argparse.ArgumentTypeError(f"must be a positive size in MiB, got {text!r}")
    return v


def _positive_seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return v


def _header_bytes(text: str) -> int:
    v = positive_int(text)
    if v < 1024:
        raise argparse.ArgumentTypeError(f"must be at least 1024 bytes, got {text!r}")
    return v


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the OpenAI-compatible gateway (uvicorn)",
                       description="Run the OpenAI-compatible router gateway.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=_port, default=8000, help="port to listen on (default 8000; 0 picks a free one)")
    add_router_flag(p)
    p.add_argument("--allow-cold-start", action="store_true",
                   help="serve the cold-start router when the configured router cannot load (default: refuse)")
    p.add_argument("--catalog", help="catalog YAML/JSON of the cold-start router (default: $ROUTER_CATALOG, else "
                                     "router/catalog/default.yaml)")
    p.add_argument("--base-url", help="one OpenAI-compatible endpoint for every model (default: $ROUTER_BASE_URL, "
                                      "else each model's catalog provider)")
    p.add_argument("--api-key-env", help="NAME of the variable holding the --base-url key (default ROUTER_API_KEY)")
    p.add_argument("--usage-db", help="usage log URL (default: $ROUTER_USAGE_DB or sqlite:///router_usage.db)")
    p.add_argument("--no-usage", action="store_true",
                   help="do not keep a usage log (serve refuses to start on an unwritable one otherwise)")
    p.add_argument("--usage-journal", metavar="DIR",
                   help="journal usage rows to DIR (one fsync'd JSONL file per worker; put it on another disk) "
                        "while the database is unavailable, and replay them when it returns (default: none; "
                        "rows that cannot be written are then counted lost)")
    p.add_argument("--usage-journal-max-mb", type=_positive_mb, default=256.0,
                   help="bound of each worker's journal, MiB (default 256); rows past it are counted lost")
    p.add_argument("--store-prompts", action="store_true",
                   help="keep prompt text and the text the classifier read in the log (default: hash only; "
                        "hash-only rows cannot train the router)")
    p.add_argument("--store-responses", action="store_true",
                   help="keep the answers in the log (they train the answer scorer; default: off)")
    p.add_argument("--exploration", type=probability, default=0.0, metavar="EPS",
                   help="route a share EPS of auto requests to a model drawn uniformly among the eligible ones, "
                        "for off-policy learning (default 0; a request opts out with \"explore\": false)")
    p.add_argument("--reload-interval", type=non_negative, default=60.0, metavar="SECONDS",
                   help="check the served alias (or folder) for a new champion this often and switch without a "
                        "restart (default 60; 0: only on SIGHUP)")
    p.add_argument("--auth-key", nargs="+", metavar="KEY",
                   help="accepted bearer keys (default: $ROUTER_AUTH_KEYS, comma-separated; none: no auth)")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="uvicorn worker processes (default 1); all serve the same pinned router version")
    p.add_argument("--timeout", type=non_negative, default=60.0, help="per-attempt upstream timeout, seconds")
    p.add_argument("--max-body-bytes", type=positive_int, default=1_000_000,
                   help="largest request body accepted, bytes (default 1,000,000)")
    p.add_argument("--deadline", type=_positive_seconds, default=DEFAULT_DEADLINE,
                   help=f"seconds a request may take in all: every attempt, backoff and fallback; for a "
                        f"stream, to its first output and between chunks (default {DEFAULT_DEADLINE:g}; a "
                        f"request's own 'deadline' overrides it)")
    p.add_argument("--max-header-bytes", type=_header_bytes, default=64 * 1024,
                   help="largest request headers accepted, bytes (default 65,536; larger: 431 and the "
                        "connection closed)")
    p.add_argument("--baseline", default=BASELINE_MODEL, help="baseline model of /v1/stats")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn log level (default warning)")
    p.add_argument("--access-log", action="store_true", help="uvicorn access log (paths and statuses, never keys)")
    add_output_flags(p, json_flag=False)
    p.set_defaults(func=cmd_serve)

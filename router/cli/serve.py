"""``router serve`` (the OpenAI-compatible gateway under uvicorn) and ``router stats`` (the usage log).

::

    router serve --base-url http://localhost:8001/v1 --api-key-env UPSTREAM_KEY --auth-key sk-gw-1
    router stats --usage-db sqlite:///router_usage.db --baseline gpt-4o --plot reports/usage

``serve`` reads nothing secret from its arguments except ``--auth-key`` (gateway keys; prefer
``$ROUTER_AUTH_KEYS``, which ``ps`` cannot show): the upstream key is read from the variable
named by ``--api-key-env`` (default ``ROUTER_API_KEY``), or per model from the catalog's
``api_key_env`` when no ``--base-url`` / ``$ROUTER_BASE_URL`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .main import _positive_int
from ..errors import DataError
from ..savings import BASELINE_MODEL

__all__ = ["register", "cmd_serve", "cmd_stats", "build_app", "app_from_env"]


# -- serve ------------------------------------------------------------------------------------
def _settings(args: argparse.Namespace) -> dict[str, Any]:
    from .. import config

    return {
        "router": args.router, "catalog": args.catalog,
        "base_url": args.base_url or config.router_base_url(),
        "api_key_env": args.api_key_env,
        "usage_db": None if args.no_usage else (args.usage_db or config.default_usage_db()),
        "store_prompts": bool(args.store_prompts),
        "auth_keys": list(args.auth_key or ()) or list(config.gateway_auth_keys()),
        "timeout": args.timeout, "max_body_bytes": args.max_body_bytes,
        "baseline": args.baseline,
    }


def build_app(settings: dict[str, Any]) -> tuple[Any, Any]:
    """(FastAPI app, usage store or None) from ``router serve``'s settings."""
    from .. import config
    from ..serving.gateway import create_app
    from ..routing import Router

    router = Router.load(settings["router"]) if settings.get("router") else Router.default(settings.get("catalog"))
    store = None
    if settings.get("usage_db"):
        from ..serving.usage.store import UsageStore

        store = UsageStore(settings["usage_db"], store_prompts=bool(settings.get("store_prompts")))
    api_key = None
    if settings.get("base_url"):
        env_name = settings.get("api_key_env") or "ROUTER_API_KEY"
        api_key = config.secret(env_name)
    app = create_app(
        router, usage=store, api_keys=tuple(settings.get("auth_keys") or ()),
        max_body_bytes=int(settings.get("max_body_bytes") or 1_000_000),
        base_url=settings.get("base_url"), api_key=api_key, timeout=float(settings.get("timeout") or 60.0),
        baseline_model=settings.get("baseline") or BASELINE_MODEL,
    )
    return app, store


def app_from_env() -> Any:
    """uvicorn factory for ``--workers N``: each worker builds its app from ``$ROUTER_SERVE_SETTINGS``."""
    from .. import config

    raw = config.serve_settings()
    if not raw:
        raise DataError("ROUTER_SERVE_SETTINGS is not set: start workers with `router serve --workers N`")
    app, _store = build_app(json.loads(raw))
    return app


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings(args)
    common = dict(host=args.host, port=args.port, log_level=args.log_level, access_log=args.access_log)
    where = settings["base_url"] or "each model's catalog provider"
    print(f"router gateway on http://{args.host}:{args.port}/v1 -> {where}; usage log: "
          f"{_safe_url(settings['usage_db']) if settings['usage_db'] else 'off'}; "
          f"auth: {'on' if settings['auth_keys'] else 'off'}; workers: {args.workers}", file=sys.stderr, flush=True)
    if args.workers > 1:
        os.environ["ROUTER_SERVE_SETTINGS"] = json.dumps(settings)  # handed to the worker processes
        uvicorn.run("router.cli.serve:app_from_env", factory=True, workers=args.workers, **common)
        return 0
    app, store = build_app(settings)
    try:
        uvicorn.run(app, **common)
    finally:
        if store is not None:
            store.close()
    return 0


# -- stats ------------------------------------------------------------------------------------
def _safe_url(url: str | None) -> str:
    if not url:
        return ""
    try:
        import sqlalchemy as sa

        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def _open_store(url: str) -> Any:
    import sqlalchemy as sa

    from ..serving.usage.store import UsageStore

    try:
        u = sa.make_url(url)
    except Exception as exc:
        raise DataError(f"invalid --usage-db URL: {exc}") from None
    if u.get_backend_name() == "sqlite" and u.database and not u.database.startswith("file:"):
        if not Path(u.database).expanduser().exists():
            raise DataError(f"no usage log at {u.database} (run `router serve` first, or pass --usage-db)")
    return UsageStore(url)


def _money(x: float) -> str:
    return f"${x:,.6f}"


def format_stats(s: dict[str, Any], source: str = "") -> str:
    lines = []
    if source:
        lines.append(f"usage log: {source}")
    lines.append(f"requests: {s['requests']}  (ok {s['ok']}, errors {s['errors']})")
    lines.append(f"tokens:   prompt {s['total_prompt_tokens']:,}, completion {s['total_completion_tokens']:,}")
    lines.append(f"cost:     {_money(s['actual_cost'])} actual vs {_money(s['baseline_cost'])} all on "
                 f"{s['baseline_model']}")
    lines.append(f"savings:  {_money(s['savings_usd'])} ({s['savings_pct']:.1f}%)")
    lat = s.get("latency_ms") or {}
    if lat.get("p50") is not None:
        lines.append(f"latency:  p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms")
    else:
        lines.append("latency:  (no requests)")
    lines.append(f"escalations: {s.get('escalations', 0)}, fallbacks: {s.get('fallbacks', 0)}")
    dist = s.get("model_distribution") or {}
    if dist:
        total = sum(dist.values()) or 1
        width = max(len(m) for m in dist)
        lines.append("models:")
        for m, n in dist.items():
            lines.append(f"  {m:<{width}}  {n:>7}  {100.0 * n / total:5.1f}%")
    by_task = s.get("cost_by_task") or {}
    if by_task:
        width = max(len(t) for t in by_task)
        lines.append("cost by task:")
        for t, c in by_task.items():
            lines.append(f"  {t:<{width}}  {_money(c)}")
    return "\n".join(lines)


def cmd_stats(args: argparse.Namespace) -> int:
    from .. import config
    from ..catalog.model_catalog import ModelCatalog

    catalog = ModelCatalog.load(args.catalog)
    url = args.usage_db or config.default_usage_db()
    store = _open_store(url)
    try:
        s = store.stats(catalog, baseline_model=args.baseline, since=args.since)
    finally:
        store.close()
    plots: list[str] = []
    if args.plot:
        from ..serving.usage.store import plot_stats

        plots = [str(p) for p in plot_stats(s, Path(args.plot))]
    if args.json:
        out = dict(s)
        if plots:
            out["plots"] = plots
        print(json.dumps(out, indent=2, default=str))
    else:
        print(format_stats(s, _safe_url(url)))
        for p in plots:
            print(f"wrote {p}")
    return 0


# -- registration -----------------------------------------------------------------------------
def _port(text: str) -> int:
    v = int(text)
    if not 0 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number, got {text}")
    return v


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the OpenAI-compatible gateway (uvicorn)",
                       description="Run the OpenAI-compatible router gateway.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=8000)
    p.add_argument("--router", help="a saved router folder or registry URI (default: cold-start router)")
    p.add_argument("--catalog", help="catalog YAML/JSON (default: router/catalog/default.yaml or $ROUTER_CATALOG)")
    p.add_argument("--base-url", help="one OpenAI-compatible endpoint for every model (default: $ROUTER_BASE_URL, "
                                      "else each model's catalog provider)")
    p.add_argument("--api-key-env", help="NAME of the variable holding the --base-url key (default ROUTER_API_KEY)")
    p.add_argument("--usage-db", help="usage log URL (default: $ROUTER_USAGE_DB or sqlite:///router_usage.db)")
    p.add_argument("--no-usage", action="store_true", help="do not keep a usage log")
    p.add_argument("--store-prompts", action="store_true", help="keep prompt text in the log (default: hash only)")
    p.add_argument("--auth-key", nargs="+", metavar="KEY",
                   help="accepted bearer keys (default: $ROUTER_AUTH_KEYS, comma-separated; none: no auth)")
    p.add_argument("--workers", type=_positive_int, default=1)
    p.add_argument("--timeout", type=float, default=60.0, help="per-attempt upstream timeout, seconds")
    p.add_argument("--max-body-bytes", type=_positive_int, default=1_000_000)
    p.add_argument("--baseline", default=BASELINE_MODEL, help="baseline model of /v1/stats")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--access-log", action="store_true", help="uvicorn access log (paths and statuses, never keys)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("stats", help="totals, savings and latency from the usage log",
                       description="Summarise the usage log: totals, savings vs a baseline, models, latency, cost by task.")
    p.add_argument("--usage-db", help="usage log URL (default: $ROUTER_USAGE_DB or sqlite:///router_usage.db)")
    p.add_argument("--baseline", default=BASELINE_MODEL, help="the model everything is compared with")
    p.add_argument("--catalog", help="catalog YAML/JSON with the prices (default: router/catalog/default.yaml)")
    p.add_argument("--since", type=float, help="only requests at or after this unix time")
    p.add_argument("--plot", metavar="DIR", help="also write PNG charts to DIR")
    p.add_argument("--json", action="store_true", help="machine-readable JSON output")
    p.set_defaults(func=cmd_stats)

"""``router stats``: totals, savings and latency from the usage log.

::

    router stats --usage-db sqlite:///router_usage.db --baseline gpt-4o --plot reports/usage
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..savings import BASELINE_MODEL, format_usd
from .main import add_output_flags

__all__ = ["register", "cmd_stats", "format_stats", "safe_url", "open_store"]


def safe_url(url: str | None) -> str:
    if not url:
        return ""
    try:
        import sqlalchemy as sa

        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def open_store(url: str) -> Any:
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
    return format_usd(x) if x != 0 and abs(x) < 5e-7 else f"${x:,.6f}"


def _table(lines: list[str], title: str, rows: dict[str, Any], cell: Any) -> None:
    """Append ``title`` and one line per (name, value) of ``rows``, names padded to one width,
    the value formatted by ``cell``; nothing when ``rows`` is empty."""
    if not rows:
        return
    width = max(len(k) for k in rows)
    lines.append(title)
    lines.extend(f"  {k:<{width}}  {cell(v)}" for k, v in rows.items())


def format_stats(s: dict[str, Any], source: str = "") -> str:
    lines = []
    if source:
        lines.append(f"usage log: {source}")
    lines.append(f"requests: {s['requests']}  (ok {s['ok']}, errors {s['errors']}, rejected before routing "
                 f"{s.get('rejected', 0)})")
    lines.append(f"tokens:   prompt {s['total_prompt_tokens']:,}, completion {s['total_completion_tokens']:,}")
    lines.append(f"cost:     {_money(s['actual_cost'])} spent ({_money(s.get('failed_cost', 0.0))} on failed "
                 "requests)")
    if s["ok"]:
        lines.append(f"savings:  {_money(s['savings_usd'])} ({s['savings_pct']:.1f}%): the {s['ok']} answered "
                     f"requests cost {_money(s.get('answered_cost', s['actual_cost']))} vs "
                     f"{_money(s['baseline_cost'])} all on {s['baseline_model']}")
    else:
        lines.append(f"savings:  n/a (no answered requests to compare with {s['baseline_model']})")
    lat = s.get("latency_ms") or {}
    if lat.get("p50") is not None:
        lines.append(f"latency:  p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms")
    else:
        lines.append("latency:  (no requests)")
    lines.append(f"escalations: {s.get('escalations', 0)}, fallbacks: {s.get('fallbacks', 0)}")
    dist = s.get("model_distribution") or {}
    total = sum(dist.values()) or 1
    _table(lines, "models:", dist, lambda n: f"{n:>7}  {100.0 * n / total:5.1f}%")
    _table(lines, "rejected before routing (by requested model):", s.get("rejected_requests") or {},
           lambda n: f"{n:>7}")
    _table(lines, "cost by task:", s.get("cost_by_task") or {}, _money)
    apart = {**(s.get("not_traffic") or {}), "imported outcomes": s.get("imported_outcomes") or 0}
    apart = {k: v for k, v in apart.items() if v}
    if apart:
        lines.append("not traffic (not counted above): " + ", ".join(f"{k} {v}" for k, v in apart.items()))
    return "\n".join(lines)


def cmd_stats(args: argparse.Namespace) -> int:
    from .. import config
    from ..catalog.model_catalog import ModelCatalog

    catalog = ModelCatalog.load(args.catalog)
    url = args.usage_db or config.default_usage_db()
    store = open_store(url)
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
        print(format_stats(s, safe_url(url)))
        for p in plots:
            print(f"wrote {p}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stats", help="totals, savings and latency from the usage log",
                       description="Summarise the usage log: totals, savings vs a baseline, models, latency, cost by task.")
    p.add_argument("--usage-db", help="usage log URL (default: $ROUTER_USAGE_DB or sqlite:///router_usage.db)")
    p.add_argument("--baseline", default=BASELINE_MODEL, help="the model everything is compared with")
    p.add_argument("--catalog", help="catalog YAML/JSON with the prices (default: router/catalog/default.yaml)")
    p.add_argument("--since", type=float, help="only requests at or after this unix time")
    p.add_argument("--plot", metavar="DIR", help="also write PNG charts to DIR")
    add_output_flags(p)
    p.set_defaults(func=cmd_stats)

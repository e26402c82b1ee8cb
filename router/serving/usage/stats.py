"""Savings statistics over the usage log, aggregated in SQL, and their charts.

What counts: only ``traffic`` rows (``requests.origin``; rows the learning loop simulates and
imported outcomes, which live in the feedback table, are reported apart). Requests **rejected**
before routing (``status = 'rejected'``: an unknown model, an invalid request) are listed apart
by what was asked for, never as models, and carry no tokens or latency. The savings compare the
requests that were **answered** (``ok``) with the same tokens at the baseline's own prices; failed
requests enter neither side (what they cost is reported as ``failed_cost``), so a log where every
request failed saves nothing. Latency percentiles are over routed requests (not rejected),
computed exactly (numpy's linear interpolation) by offset over an index.

Migration 3 adds the columns and covering indexes this reads (``ix_requests_stats`` in
``(origin, status, model, task, ...)`` order, so the totals need no sort;
``ix_requests_latency`` for the percentiles).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ...catalog.model_catalog import ModelCatalog
from .record import REQUEST_ORIGINS

__all__ = ["usage_stats", "plot_stats"]


def _percentile(conn: Connection, requests: sa.Table, where: list[Any], n: int, p: float) -> float | None:
    if n == 0:
        return None
    rank = p / 100.0 * (n - 1)
    lo = int(math.floor(rank))
    q = (sa.select(requests.c.latency_ms).where(*where).order_by(requests.c.latency_ms)
         .limit(2).offset(lo))
    vals = [float(v) for (v,) in conn.execute(q)]
    if len(vals) == 1 or rank == lo:
        return vals[0]
    return vals[0] + (rank - lo) * (vals[1] - vals[0])


def usage_stats(engine: Engine, requests: sa.Table, catalog: ModelCatalog, baseline_model: str = "gpt-4o",
                since: float | None = None, feedback: sa.Table | None = None) -> dict[str, Any]:
    """Totals, savings of the answered requests against ``baseline_model`` (their tokens at the
    baseline's own input/output prices), model and task breakdowns, latency percentiles,
    rejections, and what is not traffic; see the module docstring."""
    base = catalog[baseline_model]  # UnknownModelError for an unknown baseline
    c = requests.c
    traffic = [c.origin == "traffic"] + ([c.created_at >= since] if since is not None else [])
    q = (sa.select(c.status, c.model, c.task, sa.func.count(), sa.func.sum(c.prompt_tokens),
                   sa.func.sum(c.completion_tokens), sa.func.sum(c.cost_usd),
                   sa.func.sum(sa.case((c.escalated, 1), else_=0)), sa.func.sum(sa.case((c.attempts > 1, 1), else_=0)))
         .where(*traffic).group_by(c.status, c.model, c.task))
    statuses: Counter[str] = Counter()
    models: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    by_task: defaultdict[str, float] = defaultdict(float)
    pt = ct = ok_pt = ok_ct = escalations = fallbacks = 0
    actual = answered = 0.0
    with engine.connect() as conn:
        for status, model, task, n, spt, sct, cost, esc, fb in conn.execute(q):
            statuses[status] += n
            if status == "rejected":
                rejected[model] += n
                continue
            spt, sct, cost = int(spt or 0), int(sct or 0), float(cost or 0.0)
            models[model] += n
            pt, ct, actual = pt + spt, ct + sct, actual + cost
            by_task[task or "unknown"] += cost
            escalations += int(esc or 0)
            fallbacks += int(fb or 0)
            if status == "ok":
                ok_pt, ok_ct, answered = ok_pt + spt, ok_ct + sct, answered + cost
        routed = sum(models.values())
        lat_where = traffic + [c.status != "rejected"]
        p50 = _percentile(conn, requests, lat_where, routed, 50)
        p95 = _percentile(conn, requests, lat_where, routed, 95)
        other_q = sa.select(c.origin, sa.func.count()).where(  # equality: an index seek, not a scan
            c.origin.in_([o for o in REQUEST_ORIGINS if o != "traffic"]))
        if since is not None:
            other_q = other_q.where(c.created_at >= since)
        not_traffic = {o: int(n) for o, n in conn.execute(other_q.group_by(c.origin))}
        fb_origins: dict[str, int] = {}
        if feedback is not None:
            fq = sa.select(feedback.c.origin, sa.func.count())
            if since is not None:
                fq = fq.where(feedback.c.created_at >= since)
            fb_origins = {o: int(n) for o, n in conn.execute(fq.group_by(feedback.c.origin))}
    baseline = base.cost(ok_pt, ok_ct)
    ok = statuses.get("ok", 0)
    return {
        "requests": sum(statuses.values()), "ok": ok, "errors": routed - ok, "rejected": sum(rejected.values()),
        "statuses": dict(statuses.most_common()),
        "total_prompt_tokens": pt, "total_completion_tokens": ct,
        "actual_cost": actual, "answered_cost": answered, "failed_cost": actual - answered,
        "baseline_model": base.name, "baseline_cost": baseline,
        "savings_usd": baseline - answered,
        "savings_pct": 100.0 * (baseline - answered) / baseline if baseline > 0 else 0.0,
        "model_distribution": dict(models.most_common()),
        "rejected_requests": dict(rejected.most_common()),
        "cost_by_task": dict(sorted(by_task.items(), key=lambda kv: -kv[1])),
        "latency_ms": {"p50": p50, "p95": p95},
        "escalations": escalations, "fallbacks": fallbacks,
        "not_traffic": not_traffic,
        "feedback": {o: n for o, n in fb_origins.items() if o != "import"},
        "imported_outcomes": fb_origins.get("import", 0),
    }


def plot_stats(stats: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write ``model_distribution.png``, ``cost_by_task.png`` and ``cost_vs_baseline.png``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base_name = stats.get("baseline_model", "baseline")
    charts = [
        ("model_distribution.png", "requests per model", "requests", stats.get("model_distribution", {})),
        ("cost_by_task.png", "cost by task", "USD", stats.get("cost_by_task", {})),
        ("cost_vs_baseline.png", f"actual cost vs all on {base_name}", "USD",
         {"actual": stats.get("actual_cost", 0.0), base_name: stats.get("baseline_cost", 0.0)}),
    ]
    paths = []
    for name, title, ylabel, data in charts:
        fig = Figure(figsize=(7, 4.5))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        if data:
            labels = [str(k) for k in data]
            ax.bar(range(len(labels)), list(data.values()), color="tab:blue")
            ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        fig.tight_layout()
        path = out_dir / name
        fig.savefig(path, dpi=100)
        paths.append(path)
    return paths

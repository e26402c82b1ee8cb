"""Savings statistics over the usage log, and their charts."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ...catalog.model_catalog import ModelCatalog

__all__ = ["usage_stats", "plot_stats"]


def usage_stats(engine: Engine, requests: sa.Table, catalog: ModelCatalog, baseline_model: str = "gpt-4o",
                since: float | None = None) -> dict[str, Any]:
    """Totals, savings against ``baseline_model`` (each request's tokens at the baseline's own
    input/output prices), model and task breakdowns, latency percentiles."""
    import numpy as np

    base = catalog[baseline_model]  # UnknownModelError for an unknown baseline
    c = requests.c
    q = sa.select(c.model, c.task, c.prompt_tokens, c.completion_tokens, c.cost_usd,
                  c.latency_ms, c.status, c.chain, c.escalated)
    if since is not None:
        q = q.where(c.created_at >= since)
    n = ok = pt = ct = escalations = fallbacks = 0
    actual = baseline = 0.0
    models: Counter[str] = Counter()
    by_task: defaultdict[str, float] = defaultdict(float)
    latencies: list[float] = []
    with engine.connect() as conn:
        for r in conn.execute(q):
            n += 1
            ok += r.status == "ok"
            pt += r.prompt_tokens
            ct += r.completion_tokens
            actual += r.cost_usd
            baseline += base.cost(r.prompt_tokens, r.completion_tokens)
            models[r.model] += 1
            by_task[r.task or "unknown"] += r.cost_usd
            latencies.append(float(r.latency_ms))
            escalations += bool(r.escalated)
            fallbacks += len(json.loads(r.chain or "[]")) > 1
    pct = (lambda p: float(np.percentile(latencies, p))) if latencies else (lambda p: None)
    return {
        "requests": n, "ok": ok, "errors": n - ok,
        "total_prompt_tokens": pt, "total_completion_tokens": ct,
        "actual_cost": actual, "baseline_model": base.name, "baseline_cost": baseline,
        "savings_usd": baseline - actual,
        "savings_pct": 100.0 * (baseline - actual) / baseline if baseline > 0 else 0.0,
        "model_distribution": dict(models.most_common()),
        "cost_by_task": dict(sorted(by_task.items(), key=lambda kv: -kv[1])),
        "latency_ms": {"p50": pct(50), "p95": pct(95)},
        "escalations": escalations, "fallbacks": fallbacks,
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

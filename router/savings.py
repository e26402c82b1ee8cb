"""Savings of routed decisions against sending everything to one baseline model."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from .errors import UnknownModelError
from .policy import format_usd
from .types import RoutingDecision

__all__ = ["SavingsReport", "savings_report", "format_table", "format_usd", "ESTIMATE_NOTE", "BASELINE_MODEL"]

#: The model savings are measured against unless one is named (``router stats``, ``/v1/stats``).
BASELINE_MODEL = "gpt-4o"

#: What the estimated costs rest on, printed next to them.
ESTIMATE_NOTE = ("costs are estimates: prompt tokens counted, output lengths assumed per task "
                 "(the cost model's expected output tokens); measured costs: `router stats` on a usage log")


@dataclass(frozen=True)
class SavingsReport:
    requests: int
    routed_cost: float
    baseline_model: str
    baseline_cost: float
    model_distribution: dict[str, int] = field(default_factory=dict)
    task_distribution: dict[str, int] = field(default_factory=dict)

    @property
    def savings_pct(self) -> float:
        return 100.0 * (1 - self.routed_cost / self.baseline_cost) if self.baseline_cost > 0 else 0.0


def savings_report(decisions: Sequence[RoutingDecision], baseline_model: str = BASELINE_MODEL) -> SavingsReport:
    """Compare each decision's estimated cost with the baseline model's estimate for the same
    request (same prompt tokens and expected output, priced at the baseline's own prices)."""
    base = 0.0
    for d in decisions:
        if baseline_model not in d.estimated_costs:
            raise UnknownModelError(baseline_model, list(d.estimated_costs))
        base += d.estimated_costs[baseline_model]
    return SavingsReport(
        requests=len(decisions),
        routed_cost=sum(d.estimated_cost for d in decisions),
        baseline_model=baseline_model,
        baseline_cost=base,
        model_distribution=dict(Counter(d.model for d in decisions).most_common()),
        task_distribution=dict(Counter(d.task for d in decisions).most_common()),
    )


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(prompts: Sequence[str], decisions: Sequence[RoutingDecision], report: SavingsReport) -> str:
    """A plain-text table: prompt, task, source, model, estimated cost; then the totals."""
    rows = [("prompt", "task", "by", "model", "est. cost", report.baseline_model)]
    for p, d in zip(prompts, decisions):
        rows.append((_cut(p, 48), d.task, d.task_source, d.model, format_usd(d.estimated_cost),
                     format_usd(d.estimated_costs[report.baseline_model])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(f"requests: {report.requests}")
    lines.append(f"routed cost:          ${report.routed_cost:.6f}")
    lines.append(f"all on {report.baseline_model}: ${report.baseline_cost:.6f}")
    lines.append(f"savings:              {report.savings_pct:.1f}% (estimated)")
    lines.append("models: " + ", ".join(f"{m} {n}" for m, n in report.model_distribution.items()))
    lines.append(ESTIMATE_NOTE)
    return "\n".join(lines)

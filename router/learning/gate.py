"""The promotion gate of the learning loop (pure).

Inputs are off-policy estimates of the candidate's and the base's mean quality and mean cost on
a held-back slice of the newest feedback. The candidate is promoted only when its doubly robust
quality's lower confidence bound is not below the base's, at no more than the base's estimated
cost (within ``cost_tolerance``, a fraction), and every extra gate metric both have is not worse
by more than ``metric_tolerance``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .ope import Estimate

__all__ = ["PolicyValue", "GateResult", "gate_decision"]


@dataclass(frozen=True)
class PolicyValue:
    """One router's estimates: ``quality`` and ``cost`` by estimator name (``ips``, ``snips``,
    ``dr``)."""

    quality: Mapping[str, Estimate]
    cost: Mapping[str, Estimate]

    def to_dict(self) -> dict[str, Any]:
        return {"quality": {k: v.to_dict() for k, v in self.quality.items()},
                "cost": {k: v.to_dict() for k, v in self.cost.items()}}


@dataclass(frozen=True)
class GateResult:
    promote: bool
    reasons: list[str]
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return "promote" if self.promote else "refuse"


def gate_decision(candidate: PolicyValue, base: PolicyValue, *, cost_tolerance: float = 0.0,
                  metrics: Mapping[str, tuple[float | None, float | None]] | None = None,
                  metric_tolerance: float = 0.005, min_ess: float = 10.0) -> GateResult:
    """Promote or refuse (see the module docstring). ``metrics``: name -> (candidate, base) of
    extra higher-is-better metrics (e.g. AIQ on full-information rows); ``min_ess``: fewer
    effective rows than this under either policy refuses (too little evidence)."""
    cq, bq = candidate.quality["dr"], base.quality["dr"]
    cc, bc = candidate.cost["dr"], base.cost["dr"]
    reasons, ok = [], True
    checks: dict[str, Any] = {
        "quality_dr_low": {"candidate": cq.low, "base": bq.low},
        "cost_dr": {"candidate": cc.value, "base": bc.value},
        "ess": {"candidate": cq.ess, "base": bq.ess},
    }
    if min(cq.ess, bq.ess) < min_ess:
        ok = False
        reasons.append(f"too little evidence: effective sample size {min(cq.ess, bq.ess):.1f} < {min_ess:g}")
    if cq.low < bq.low - 1e-12:
        ok = False
        reasons.append(f"DR quality lower bound {cq.low:.4f} is below the base's {bq.low:.4f}")
    else:
        reasons.append(f"DR quality lower bound {cq.low:.4f} >= the base's {bq.low:.4f}")
    limit = bc.value * (1.0 + cost_tolerance)
    if cc.value > limit + 1e-15:
        ok = False
        reasons.append(f"DR cost ${cc.value:.6f} per request exceeds the base's ${bc.value:.6f}")
    else:
        reasons.append(f"DR cost ${cc.value:.6f} per request <= the base's ${bc.value:.6f}")
    for name, (a, b) in (metrics or {}).items():
        checks[name] = {"candidate": a, "base": b}
        if a is None or b is None:
            continue
        if a < b - metric_tolerance:
            ok = False
            reasons.append(f"{name} {a:.4f} < base {b:.4f} - {metric_tolerance}")
    return GateResult(ok, reasons, checks)

"""Off-policy evaluation of a candidate router against its base on held-back feedback.

Each held-back context (a logged request, or an imported prompt) contributes its observed
(model, score, cost) entries: with the logged propensity for bandit feedback, with propensity 1
when the prompt was scored on every evaluated model (full information: the estimates are then
direct). Entries with neither are counted as unusable. Both routers choose among the models
observed in the slice, each at its default tier: the gate judges the candidate as it
will serve. The report adds the candidate's best operating point at no more than the base's cost
(the quality target whose doubly robust quality has the best lower bound among those whose doubly
robust cost is not above the base's): where that beats the default tier, retargeting the tier
would serve it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ...learning.gate import GateResult, PolicyValue, gate_decision
from ...learning.ope import Logged, dr, ips, snips
from ...routing import Router
from ..evaluate.routing import THRESHOLDS, OutcomeMatrix, evaluate_routing, route_threshold

__all__ = ["context_key", "evaluate_candidate"]


def context_key(df: pd.DataFrame) -> pd.Series:
    """One context per logged request, one per imported prompt."""
    logged = df.request_id.notna() & ~df.request_id.astype(str).str.startswith("import:")
    return df.request_id.where(logged, "prompt:" + df.prompt_id.astype(str))


def _values(log: Logged, choice: np.ndarray, q_hat: np.ndarray, cost_log: Logged,
            c_hat: np.ndarray) -> PolicyValue:
    return PolicyValue(quality={"ips": ips(log, choice), "snips": snips(log, choice), "dr": dr(log, choice, q_hat)},
                       cost={"ips": ips(cost_log, choice), "snips": snips(cost_log, choice),
                             "dr": dr(cost_log, choice, c_hat)})


def evaluate_candidate(slice_df: pd.DataFrame, base: Router, candidate: Router, *, cost_tolerance: float = 0.0,
                       min_ess: float = 10.0) -> tuple[GateResult, dict[str, Any]]:
    """(gate result, report) for ``candidate`` vs ``base`` on the held-back rows ``slice_df``
    (the outcome-row frame of :func:`router.training.loop.rows.outcome_rows`)."""
    df = slice_df.assign(ctx=context_key(slice_df))
    models = [m for m in candidate.models if m in set(df.model)]
    info: dict[str, Any] = {"held_back_rows": int(len(df)), "models_evaluated": models}
    if len(models) < 2:
        res = GateResult(False, [f"the held-back slice scores {len(models)} model(s); need >= 2 to compare routers"])
        return res, info
    agg = df.groupby(["ctx", "model"], sort=False).agg(
        score=("score", "mean"), cost=("cost", "mean"), propensity=("propensity", "first"),
        prompt=("prompt", "first"), t=("created_at", "max")).reset_index()
    agg = agg[agg.model.isin(models)]
    bandit = agg[agg.propensity.notna()]
    per_ctx = agg[agg.propensity.isna()].groupby("ctx").model.nunique()
    full_ctx = set(per_ctx[per_ctx == len(models)].index) - set(bandit.ctx)
    full = agg[agg.ctx.isin(full_ctx) & agg.propensity.isna()]
    entries = pd.concat([bandit, full.assign(propensity=1.0)], ignore_index=True)
    info.update({"bandit_entries": int(len(bandit)), "full_information_prompts": len(full_ctx),
                 "unusable_entries": int(len(agg) - len(entries))})
    ctxs = list(dict.fromkeys(entries.ctx))
    if len(ctxs) < 2:
        return GateResult(False, ["no off-policy evaluable feedback in the held-back slice (need logged "
                                  "propensities or prompts scored on every model)"]), info
    cidx = {c: i for i, c in enumerate(ctxs)}
    midx = {m: j for j, m in enumerate(models)}
    texts = entries.drop_duplicates("ctx").set_index("ctx").prompt.loc[ctxs].tolist()
    cols_c = [candidate.models.index(m) for m in models]
    cols_b = [base.models.index(m) for m in models]
    ce, be = candidate.predict(texts), base.predict(texts)
    cq, cc = ce.quality[:, cols_c], ce.cost[:, cols_c]
    bq, bc = be.quality[:, cols_b], be.cost[:, cols_b]
    ctx_i = entries.ctx.map(cidx).to_numpy()
    act = entries.model.map(midx).to_numpy()
    prop = entries.propensity.to_numpy(float)
    cost = entries.cost.to_numpy(float)
    cost = np.where(np.isnan(cost), cc[ctx_i, act], cost)  # unknown costs: the candidate's estimate
    qlog = Logged(ctx_i, act, entries.score.to_numpy(float), prop, len(ctxs))
    clog = Logged(ctx_i, act, cost, prop, len(ctxs))

    def target_of(r: Router) -> float:
        return float(r.policy.tiers[r.policy.default_tier])

    base_choice = route_threshold(bq, bc, target_of(base))
    base_v = _values(qlog, base_choice, cq, clog, cc)
    default_choice = route_threshold(cq, cc, target_of(candidate))
    default_v = _values(qlog, default_choice, cq, clog, cc)
    limit = base_v.cost["dr"].value * (1.0 + cost_tolerance)
    best, best_knob = None, None
    for knob in np.union1d(THRESHOLDS, np.quantile(cq, np.linspace(0, 1, 41))):
        ch = route_threshold(cq, cc, float(knob))
        if dr(clog, ch, cc).value <= limit + 1e-15:
            v = dr(qlog, ch, cq)  # the knob with the best lower bound: quality with the evidence for it
            if best is None or v.low > best[1].low + 1e-12:
                best, best_knob = (ch, v), float(knob)
    matched = None if best is None else {"target": best_knob,
                                         **_values(qlog, best[0], cq, clog, cc).to_dict()}
    cand_v = default_v
    metrics: dict[str, tuple[float | None, float | None]] = {}
    if len(full_ctx) >= 10:
        rows = [cidx[c] for c in ctxs if c in full_ctx]
        fq = np.full((len(rows), len(models)), np.nan)
        fc = np.full_like(fq, np.nan)
        pos = {r: i for i, r in enumerate(rows)}
        for i, a, s, c in zip(ctx_i, act, entries.score.to_numpy(float), cost):
            if i in pos:
                fq[pos[i], a], fc[pos[i], a] = s, c
        costs = fc.mean(0)
        if np.isfinite(fq).all() and costs.max() > costs.min():
            om = OutcomeMatrix([ctxs[r] for r in rows], [texts[r] for r in rows], ["slice"] * len(rows),
                               models, fq, fc)
            rep = evaluate_routing(om, {"candidate": (cq[rows], cc[rows]), "base": (bq[rows], bc[rows])})
            metrics["aiq"] = (rep["routers"]["candidate"]["aiq"], rep["routers"]["base"]["aiq"])
    result = gate_decision(cand_v, base_v, cost_tolerance=cost_tolerance, metrics=metrics, min_ess=min_ess)
    info.update({"contexts": len(ctxs), "base": base_v.to_dict(), "candidate": cand_v.to_dict(),
                 "candidate_at_base_cost": matched,
                 "base_target": target_of(base), "extra_metrics": {k: list(v) for k, v in metrics.items()},
                 "base_share": _shares(base_choice, models), "candidate_share": _shares(default_choice, models)})
    return result, info


def _shares(choice: np.ndarray, models: list[str]) -> dict[str, float]:
    counts = np.bincount(choice, minlength=len(models))
    return {m: round(float(c) / max(1, len(choice)), 4) for m, c in zip(models, counts) if c}

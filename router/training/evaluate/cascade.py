"""Cascade evaluation behind ``router eval --cascade``: quality against the total cost paid.

For outcome rows with answers (true score, cost and answer of every model on every prompt),
the router's pre-call predictions and an answer scorer, :func:`simulate_cascade` plays the pure
:func:`router.cascade.cascade_step` policy prompt by prompt, paying for every call it makes,
and :func:`evaluate_cascade` sweeps its knobs (lower target, accept threshold, steps, with and
without two-answer agreement) into a cost-quality curve. Side by side: pre-call routing, every
single model, the agreement-cascade bound (two cheap models; the best model when their
answers differ), a perfect-verifier cascade (the router's cheap pick, then the best model
exactly when the cheap answer is wrong) and the oracle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from ...cascade import Attempt, CascadeConfig, cascade_step
from ...predictors.answer_scorer import normalise_answer
from .metrics import aiq, cost_to_match, upper_hull
from .routing import route_threshold

__all__ = ["ScoreFn", "simulate_cascade", "cascade_curve", "agreement_bound", "perfect_verifier_curve",
           "evaluate_cascade", "TARGETS", "ACCEPTS"]

#: ``score(rows, cols, others) -> (k,)``: the scorer's P(good) of the answers of models ``cols``
#: on prompts ``rows``, each with the list of other answers already in hand.
ScoreFn = Callable[[Sequence[int], Sequence[int], Sequence[Sequence[str]]], np.ndarray]

TARGETS = tuple(np.round(np.arange(0.3, 0.96, 0.05), 2))
GAPS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3)
#: 0: never escalate (the cascade's first step alone is pre-call routing)
ACCEPTS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def simulate_cascade(
    models: Sequence[str],
    pred_q: np.ndarray,
    pred_c: np.ndarray,
    true_q: np.ndarray,
    true_c: np.ndarray,
    answers: Sequence[Sequence[str]],
    score: ScoreFn,
    config: CascadeConfig,
    *,
    max_cost: float | None = None,
    cache: dict | None = None,
) -> dict[str, Any]:
    """Run the cascade on p prompts: arrays (p, m) of predictions, true outcomes and true costs;
    ``answers`` p lists of m answers. Returns the means over prompts of the cost paid (every
    call), the returned answer's quality, sequential steps (``mean_calls``) and models called.
    ``cache``: scores shared between runs, keyed (row, col, other cols)."""
    p = len(true_q)
    cache = {} if cache is None else cache
    index = {m: j for j, m in enumerate(models)}
    history: list[list[Attempt]] = [[] for _ in range(p)]
    final: list[str | None] = [None] * p
    active = list(range(p))
    while active:
        calls: list[tuple[int, tuple[str, ...], int]] = []
        for i in active:
            act = cascade_step(models, pred_q[i], pred_c[i], history[i], config, max_cost=max_cost)
            if act.kind == "call":
                calls.append((i, act.models, act.step))
            else:
                final[i] = act.models[0] if act.models else None
        # pay for the calls, then score each answer with every other answer in hand
        need: list[tuple[int, int, tuple[int, ...]]] = []
        for i, ms, step in calls:
            tried = [index[a.model] for a in history[i]] + [index[m] for m in ms]
            for m in ms:
                j = index[m]
                key = (i, j, tuple(sorted(k for k in tried if k != j)))
                if key not in cache:
                    need.append(key)
        if need:
            probs = score([k[0] for k in need], [k[1] for k in need],
                          [[answers[k[0]][o] for o in k[2]] for k in need])
            cache.update(zip(need, map(float, probs)))
        for i, ms, step in calls:
            tried = [index[a.model] for a in history[i]] + [index[m] for m in ms]
            for m in ms:
                j = index[m]
                key = (i, j, tuple(sorted(k for k in tried if k != j)))
                history[i].append(Attempt(m, float(true_c[i, j]), step, cache[key]))
        active = [i for i, _, _ in calls]
    paid = np.array([sum(a.cost for a in h) for h in history])
    quality = np.array([true_q[i, index[f]] if f is not None else 0.0 for i, f in enumerate(final)])
    steps = np.array([max((a.step for a in h), default=0) for h in history])
    n_calls = np.array([len(h) for h in history])
    return {"mean_cost_paid": float(paid.mean()), "mean_quality": float(quality.mean()),
            "mean_calls": float(steps.mean()), "mean_models_called": float(n_calls.mean())}


def _curve_summary(points: list[dict[str, Any]], lo: float, hi: float, best_q: float, best_c: float) -> dict[str, Any]:
    pts = [(p["mean_cost_paid"], p["mean_quality"]) for p in points]
    match = cost_to_match(pts, best_q)
    reach = [p for p in points if p["mean_quality"] >= best_q - 1e-12]
    parity = min(reach, key=lambda p: p["mean_cost_paid"]) if reach else None
    return {
        "aiq": aiq(pts, lo, hi), "hull": upper_hull(pts),
        "cost_to_match_best_ratio": (match / best_c) if match is not None and best_c > 0 else None,
        "parity_point": parity,
        "parity_cost_ratio": (parity["mean_cost_paid"] / best_c) if parity and best_c > 0 else None,
        "max_quality": max(p["mean_quality"] for p in points),
    }


def cascade_curve(models, pred_q, pred_c, true_q, true_c, answers, score: ScoreFn, *,
                  agree: bool = False, steps: Sequence[int] = (2, 3), targets: Sequence[float] = TARGETS,
                  gaps: Sequence[float] = GAPS, accepts: Sequence[float] = ACCEPTS) -> list[dict[str, Any]]:
    """The cascade's points over its knobs: one dict per (first-step target or gap, accept,
    max_steps) with the config and :func:`simulate_cascade`'s means."""
    cache: dict = {}
    out = []
    firsts = [{"target": float(t), "gap": None} for t in targets] + [{"target": 0.0, "gap": float(g)} for g in gaps]
    for max_steps in steps:
        for first in firsts:
            for a in accepts:
                cfg = CascadeConfig(**first, accept=float(a), max_steps=int(max_steps), agree=agree)
                res = simulate_cascade(models, pred_q, pred_c, true_q, true_c, answers, score, cfg, cache=cache)
                out.append({**first, "accept": float(a), "max_steps": int(max_steps), "agree": agree, **res})
    return out


def agreement_bound(true_q: np.ndarray, true_c: np.ndarray, answers, best: int, cheap: Sequence[int]) -> list[dict]:
    """Ask two cheap models (every pair of ``cheap``), keep the first's answer when the two agree
    (:func:`normalise_answer`), else pay for model ``best`` too. One point per pair."""
    norm = [[normalise_answer(a or "") for a in row] for row in answers]
    out = []
    for a, b in combinations(cheap, 2):
        same = np.array([row[a] == row[b] for row in norm])
        paid = true_c[:, a] + true_c[:, b] + np.where(same, 0.0, true_c[:, best])
        q = np.where(same, true_q[:, a], true_q[:, best])
        out.append({"pair": [int(a), int(b)], "mean_cost_paid": float(paid.mean()), "mean_quality": float(q.mean()),
                    "mean_calls": float(1 + (~same).mean())})
    return out


def perfect_verifier_curve(pred_q, pred_c, true_q, true_c, best: int,
                           targets: Sequence[float] = TARGETS) -> list[dict]:
    """The router's cheap pick at each target, then model ``best`` exactly when the cheap answer
    is wrong (a verifier that is always right): the bound a real scorer lives under."""
    rows = np.arange(len(true_q))
    out = []
    for t in targets:
        first = route_threshold(pred_q, pred_c, float(t))
        ok = true_q[rows, first] >= 0.5
        again = ~ok & (first != best)
        paid = true_c[rows, first] + np.where(again, true_c[:, best], 0.0)
        q = np.where(again, true_q[:, best], true_q[rows, first])
        out.append({"target": float(t), "mean_cost_paid": float(paid.mean()), "mean_quality": float(q.mean()),
                    "mean_calls": float(1 + again.mean())})
    return out


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    y = y >= 0.5
    if y.all() or (~y).all():
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def evaluate_cascade(
    models: Sequence[str],
    sources: Sequence[str],
    pred_q: np.ndarray,
    pred_c: np.ndarray,
    true_q: np.ndarray,
    true_c: np.ndarray,
    answers: Sequence[Sequence[str]],
    score: ScoreFn,
    *,
    precall_points: Sequence[tuple[float, float]] = (),
    cheap_share: float = 0.2,
    steps: Sequence[int] = (2, 3),
) -> dict[str, Any]:
    """The cascade report: curves (points with ``mean_cost_paid``, ``mean_quality``,
    ``mean_calls``) and their AIQ over the single models' cost range, the cost at which each
    first reaches the best single model's quality (share of its cost) with the mean sequential
    calls there, pre-call routing (``precall_points``: its realised (cost, quality) points), the
    best single model, the agreement bound over models cheaper than ``cheap_share`` of the best's
    cost, the perfect-verifier cascade, the oracle, the scorer's AUC per source (answers alone),
    and the same summary per source."""
    p, m = true_q.shape
    single_q, single_c = true_q.mean(0), true_c.mean(0)
    lo, hi = float(single_c.min()), float(single_c.max())
    best = int(max(range(m), key=lambda j: (single_q[j], -single_c[j])))
    best_q, best_c = float(single_q[best]), float(single_c[best])
    cheap = [j for j in range(m) if single_c[j] <= cheap_share * best_c]
    oracle_choice = np.where(true_q >= true_q.max(1, keepdims=True) - 1e-12, true_c, np.inf).argmin(1)
    rows = np.arange(p)
    lone = score(np.repeat(rows, m).tolist(), np.tile(np.arange(m), p).tolist(), [[] for _ in range(p * m)])
    report: dict[str, Any] = {
        "prompts": p, "models": list(models), "best_single_model": models[best],
        "best_single": {"mean_cost_paid": best_c, "mean_quality": best_q, "mean_calls": 1.0},
        "single_models": {mm: {"mean_cost_paid": float(single_c[j]), "mean_quality": float(single_q[j]),
                               "mean_calls": 1.0} for j, mm in enumerate(models)},
        "oracle": {"mean_cost_paid": float(true_c[rows, oracle_choice].mean()),
                   "mean_quality": float(true_q[rows, oracle_choice].mean()), "mean_calls": 1.0},
        "cost_range": [lo, hi],
        "scorer_auc": {"pooled": _auc(true_q.ravel(), lone)},
    }
    lone = lone.reshape(p, m)
    src = np.asarray(sources)
    for s in sorted(set(sources)):
        k = src == s
        report["scorer_auc"][s] = _auc(true_q[k].ravel(), lone[k].ravel())
    if precall_points:
        pts = [{"mean_cost_paid": float(c), "mean_quality": float(q), "mean_calls": 1.0} for c, q in precall_points]
        report["precall"] = {"curve": pts, **_curve_summary(pts, lo, hi, best_q, best_c)}
    curves: dict[str, list[dict]] = {
        "cascade": cascade_curve(models, pred_q, pred_c, true_q, true_c, answers, score, steps=steps),
        "cascade_agree": cascade_curve(models, pred_q, pred_c, true_q, true_c, answers, score, agree=True, steps=steps),
        "perfect_verifier": perfect_verifier_curve(pred_q, pred_c, true_q, true_c, best),
    }
    if len(cheap) >= 2:
        curves["agreement_bound"] = agreement_bound(true_q, true_c, answers, best, cheap)
    for name, pts in curves.items():
        report[name] = {"curve": pts, **_curve_summary(pts, lo, hi, best_q, best_c)}
    # per source: where the pooled target is missed, this says which benchmark misses it
    report["per_source"] = {}
    for s in sorted(set(sources)):
        k = np.flatnonzero(src == s)
        if len(k) < 10:
            continue
        sub_a = [answers[i] for i in k]
        sub_score: ScoreFn = lambda r, c, o, k=k: score([int(k[i]) for i in r], c, o)
        sq, sc = true_q[k].mean(0), true_c[k].mean(0)
        b = int(max(range(m), key=lambda j: (sq[j], -sc[j])))
        pts = cascade_curve(models, pred_q[k], pred_c[k], true_q[k], true_c[k], sub_a, sub_score, steps=steps[:1])
        summ = _curve_summary(pts, float(sc.min()), float(sc.max()), float(sq[b]), float(sc[b]))
        pv = _curve_summary(perfect_verifier_curve(pred_q[k], pred_c[k], true_q[k], true_c[k], b),
                            float(sc.min()), float(sc.max()), float(sq[b]), float(sc[b]))
        cheap_k = [j for j in range(m) if sc[j] <= cheap_share * sc[b]]
        ab = (_curve_summary(agreement_bound(true_q[k], true_c[k], sub_a, b, cheap_k), float(sc.min()),
                             float(sc.max()), float(sq[b]), float(sc[b])) if len(cheap_k) >= 2 else None)
        report["per_source"][s] = {"prompts": int(len(k)), "best_single_model": models[b],
                                   "best_quality": float(sq[b]), "scorer_auc": report["scorer_auc"].get(s),
                                   **{key: summ[key] for key in ("aiq", "cost_to_match_best_ratio",
                                                                 "parity_cost_ratio", "max_quality")},
                                   "parity_mean_calls": summ["parity_point"]["mean_calls"] if summ["parity_point"] else None,
                                   "perfect_verifier_parity_ratio": pv["cost_to_match_best_ratio"],
                                   "agreement_bound_parity_ratio": ab["cost_to_match_best_ratio"] if ab else None,
                                   "agreement_bound_max_quality": ab["max_quality"] if ab else None}
    return report

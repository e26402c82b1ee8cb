"""The routing evaluation harness behind ``router eval``.

For an outcome set (true score and cost of every model on every prompt) and predictors
(predicted quality and cost matrices), it reports every single model's (mean cost, mean
quality), the oracle, random routing, each router's cost-quality curve over its knob, AIQ, the
cost at which a router first matches the best single model's quality, and, for a two-model
pair, APGR and CPT(50%/80%). Baselines: a kNN router and a per-task table router.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...errors import DataError
from ...policy import PolicyConfig, choose
from .metrics import aiq, apgr, cost_to_match, cpt, expected_calibration_error, upper_hull

__all__ = [
    "id_bucket",
    "is_validation",
    "split_outcomes",
    "covered_models",
    "OutcomeMatrix",
    "outcome_matrix",
    "route_threshold",
    "route_gap",
    "router_curve",
    "knn_predictor",
    "table_predictor",
    "evaluate_routing",
    "plot_cost_quality",
    "THRESHOLDS",
    "GAPS",
    "MODES",
    "value_prices",
]

THRESHOLDS = tuple(np.round(np.linspace(0, 1, 41), 3))
GAPS = tuple(np.round(np.linspace(0, 0.6, 31), 3))
#: Knob modes of a curve: a quality target (``min_quality`` / tiers: the router's own rule, a
#: per-request threshold or, with a price curve, the value rule at the target's price), a gap
#: (``max_quality_gap``), and a sweep of the value rule's price (the frontier it traces).
MODES = ("threshold", "gap", "value")


def value_prices(pred_q: np.ndarray, pred_c: np.ndarray, points: int = 80) -> np.ndarray:
    """Prices (quality points per USD) from 0 to where the cheapest model always wins."""
    spread = float(np.ptp(pred_q, axis=1).max()) if pred_q.size else 0.0
    pos = pred_c[pred_c > 0]
    if spread <= 0 or pos.size == 0:
        return np.array([0.0])
    return np.concatenate([[0.0], np.geomspace(1e-3 * spread / pos.max(), 10 * spread / np.quantile(pos, 0.01),
                                               points - 1)])


def id_bucket(prompt_id: str, buckets: int) -> int:
    """A prompt's bucket in [0, buckets), from a hash of its id: stable across runs and machines."""
    return int(hashlib.sha1(prompt_id.encode()).hexdigest()[:8], 16) % buckets


def is_validation(prompt_id: str, percent: int = 20) -> bool:
    """Deterministic validation split by prompt id: train and eval agree without shared state."""
    return id_bucket(prompt_id, 100) < percent


def covered_models(df: pd.DataFrame, models: Sequence[str], what: str, share: float = 0.95) -> list[str]:
    """The ``models`` (in their order) with an outcome on at least ``share`` of ``df``'s prompts;
    :class:`DataError` when fewer than two (``what`` says what they must cover, for the message)."""
    n_prompts = df.prompt_id.nunique()
    counts = df.groupby("model").prompt_id.nunique()
    out = [m for m in models if counts.get(m, 0) >= share * n_prompts]
    if len(out) < 2:
        raise DataError(f"need >= 2 catalog models {what}; have {out}")
    return out


def split_outcomes(df: pd.DataFrame, percent: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    val = df.prompt_id.map(lambda p: is_validation(p, percent))
    return df[~val].reset_index(drop=True), df[val].reset_index(drop=True)


@dataclass
class OutcomeMatrix:
    """True outcomes of ``models`` on ``prompts``: ``quality`` and ``cost`` arrays (p, m)."""

    prompt_ids: list[str]
    prompts: list[str]
    sources: list[str]
    models: list[str]
    quality: np.ndarray
    cost: np.ndarray


def outcome_matrix(df: pd.DataFrame, models: Sequence[str] | None = None) -> OutcomeMatrix:
    """Pivot long outcomes; keeps prompts scored for every model, fills a missing cost with the
    model's mean cost on the set (0 when the set has no costs at all)."""
    models = list(models) if models is not None else sorted(df.model.unique())
    sub = df[df.model.isin(models)]
    q = sub.pivot_table(index="prompt_id", columns="model", values="score", aggfunc="mean")
    q = q.reindex(columns=models).dropna()
    c = sub.pivot_table(index="prompt_id", columns="model", values="cost", aggfunc="mean", dropna=False)
    c = c.reindex(index=q.index, columns=models)
    c = c.fillna(c.mean()).fillna(0.0)
    meta = sub.drop_duplicates("prompt_id").set_index("prompt_id").loc[q.index]
    return OutcomeMatrix(list(q.index), meta.prompt.tolist(), meta.source.tolist(), models,
                         q.to_numpy(float), c.to_numpy(float))


def _names(models: Sequence[str] | None, m: int) -> Sequence[str]:
    # without names, ties fall to the lower column (names that sort in column order)
    return list(models) if models is not None else [f"{j:09d}" for j in range(m)]


def route_threshold(pred_q: np.ndarray, pred_c: np.ndarray, target: float,
                    models: Sequence[str] | None = None, eligible: np.ndarray | None = None) -> np.ndarray:
    """Per prompt: the cheapest model with predicted quality >= target, else the best predicted
    (:func:`router.policy.choose`, the router's own rules and tie-breaks). ``eligible``: bool
    (p, m), see :func:`router.policy.eligibility`."""
    return choose(pred_q, pred_c, _names(models, pred_q.shape[1]), target=target, eligible=eligible)


def route_gap(pred_q: np.ndarray, pred_c: np.ndarray, gap: float,
              models: Sequence[str] | None = None, eligible: np.ndarray | None = None) -> np.ndarray:
    """Per prompt: the cheapest model within ``gap`` of the best predicted quality
    (:func:`router.policy.choose`)."""
    return choose(pred_q, pred_c, _names(models, pred_q.shape[1]), gap=gap, eligible=eligible)


def router_curve(pred_q, pred_c, true_q, true_c, mode: str = "threshold",
                 knobs: Sequence[float] | None = None, *, models: Sequence[str] | None = None,
                 eligible: np.ndarray | None = None,
                 policy: PolicyConfig | None = None) -> list[dict[str, float]]:
    """Realised (mean cost, mean quality) at each knob value (default: a fixed grid plus the
    quantiles of the predictions, so a router whose predictions cluster is still traced).
    ``eligible``: bool (p, m), every prompt with at least one eligible model. ``mode``: one of
    :data:`MODES`; ``policy``: the router's, whose price curve turns a threshold-mode target into
    a price and whose anchor credit the value rule adds, as the router does."""
    price_curve = policy.price_curve if policy is not None else ()
    credit = {"anchor": policy.anchor, "anchor_margin": policy.anchor_margin} if policy is not None else {}
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    rows = np.arange(len(true_q))
    if eligible is not None and not np.asarray(eligible, bool).any(1).all():
        raise ValueError("every prompt needs at least one eligible model")
    out = []
    if knobs is None:  # a fixed grid plus the predictions' own quantiles, so every regime is traced
        if mode == "threshold":
            knobs = np.union1d(THRESHOLDS, np.quantile(pred_q, np.linspace(0, 1, 101)))
            if price_curve:
                knobs = np.union1d(knobs, [q for q, _ in price_curve])
        elif mode == "value":
            knobs = value_prices(np.asarray(pred_q, float), np.asarray(pred_c, float))
        else:
            knobs = np.union1d(GAPS, np.quantile(pred_q.max(1, keepdims=True) - pred_q, np.linspace(0, 1, 101)))
    for k in knobs:
        if mode == "threshold" and price_curve:
            choice = choose(pred_q, pred_c, _names(models, pred_q.shape[1]),
                            price=policy.price(float(k)), eligible=eligible, **credit)
        elif mode == "threshold":
            choice = route_threshold(pred_q, pred_c, k, models, eligible)
        elif mode == "value":
            choice = choose(pred_q, pred_c, _names(models, pred_q.shape[1]), price=float(k), eligible=eligible,
                            **credit)
        else:
            choice = route_gap(pred_q, pred_c, k, models, eligible)
        out.append({"knob": float(k), "cost": float(true_c[rows, choice].mean()),
                    "quality": float(true_q[rows, choice].mean())})
    return out


def knn_predictor(train_X: np.ndarray, train: OutcomeMatrix, test_X: np.ndarray, k: int = 25):
    """Mean outcomes and costs of the k nearest training prompts (cosine on embeddings)."""
    a = train_X / np.maximum(np.linalg.norm(train_X, axis=1, keepdims=True), 1e-12)
    b = test_X / np.maximum(np.linalg.norm(test_X, axis=1, keepdims=True), 1e-12)
    sims = b @ a.T
    nn = np.argpartition(-sims, kth=min(k, len(a) - 1), axis=1)[:, :k]
    return train.quality[nn].mean(1), train.cost[nn].mean(1)


def table_predictor(train_tasks: Sequence[str], train: OutcomeMatrix, test_tasks: Sequence[str]):
    """Per-task table: each model's mean score and cost on training prompts of the same task."""
    train_tasks = np.asarray(train_tasks)
    overall_q, overall_c = train.quality.mean(0), train.cost.mean(0)
    q, c = [], []
    for t in test_tasks:
        m = train_tasks == t
        q.append(train.quality[m].mean(0) if m.sum() >= 5 else overall_q)
        c.append(train.cost[m].mean(0) if m.sum() >= 5 else overall_c)
    return np.array(q), np.array(c)


def evaluate_routing(
    data: OutcomeMatrix,
    predictors: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    pair: tuple[str, str] | None = None,
    seed: int = 0,
    eligible: np.ndarray | None = None,
    policies: Mapping[str, PolicyConfig] | None = None,
) -> dict[str, Any]:
    """The full report (see module docstring). ``predictors``: name -> (pred_q, pred_c), arrays
    (p, m) aligned with ``data``. ``pair``: (strong, weak) model names for APGR/CPT.
    ``eligible``: bool (p, m), the models the router may pick per prompt (context window,
    vision; :func:`router.policy.eligibility`); default all. ``policies``: predictor name ->
    its router's policy (threshold mode then follows its price curve, the value rule its anchor)."""
    tq, tc = data.quality, data.cost
    single = {m: {"cost": float(tc[:, j].mean()), "quality": float(tq[:, j].mean())}
              for j, m in enumerate(data.models)}
    lo = min(v["cost"] for v in single.values())
    hi = max(v["cost"] for v in single.values())
    best_model = max(single, key=lambda m: (single[m]["quality"], -single[m]["cost"]))
    best_q, best_c = single[best_model]["quality"], single[best_model]["cost"]
    # oracle: per prompt the cheapest model with the best true score
    oracle_choice = np.where(tq >= tq.max(1, keepdims=True) - 1e-12, tc, np.inf).argmin(1)
    rows = np.arange(len(tq))
    oracle = {"cost": float(tc[rows, oracle_choice].mean()), "quality": float(tq[rows, oracle_choice].mean())}
    rng = np.random.default_rng(seed)
    rand = rng.integers(0, len(data.models), len(tq))
    random_point = {"cost": float(tc[rows, rand].mean()), "quality": float(tq[rows, rand].mean())}
    single_pts = [(v["cost"], v["quality"]) for v in single.values()]
    report: dict[str, Any] = {
        "prompts": len(tq), "models": data.models, "sources": sorted(set(data.sources)),
        "single_models": single, "oracle": oracle, "random": random_point,
        "best_single_model": best_model, "cost_range": [lo, hi],
        "mix_single_models_aiq": aiq(single_pts, lo, hi), "routers": {},
    }
    for name, (pq, pc) in predictors.items():
        entry: dict[str, Any] = {}
        for mode in MODES:
            curve = router_curve(pq, pc, tq, tc, mode, models=data.models, eligible=eligible,
                                 policy=(policies or {}).get(name))
            pts = [(p["cost"], p["quality"]) for p in curve]
            match = cost_to_match(pts, best_q)
            entry[mode] = {
                "curve": curve, "aiq": aiq(pts, lo, hi),
                "hull": upper_hull(pts),
                "cost_to_match_best": match,
                "cost_to_match_best_ratio": (match / best_c) if match is not None and best_c > 0 else None,
            }
        entry["aiq"] = max(entry[m]["aiq"] for m in MODES)
        entry["max_quality"] = max(p["quality"] for m in MODES for p in entry[m]["curve"])
        ratios = [entry[m]["cost_to_match_best_ratio"] for m in MODES
                  if entry[m]["cost_to_match_best_ratio"] is not None]
        entry["cost_to_match_best_ratio"] = min(ratios) if ratios else None
        entry["ece"] = expected_calibration_error(pq, tq)
        entry["brier"] = float(np.mean((pq - tq) ** 2))
        if pair is not None and all(m in data.models for m in pair):
            s, w = data.models.index(pair[0]), data.models.index(pair[1])
            score = pq[:, s] - pq[:, w]
            entry["pair"] = {"strong": pair[0], "weak": pair[1], "apgr": apgr(score, tq[:, s], tq[:, w]),
                             "cpt50": cpt(score, tq[:, s], tq[:, w], 0.5), "cpt80": cpt(score, tq[:, s], tq[:, w], 0.8)}
        report["routers"][name] = entry
    return report


def plot_cost_quality(report: Mapping[str, Any], path: Path, title: str = "cost vs quality") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 6))
    for m, v in report["single_models"].items():
        ax.scatter(v["cost"], v["quality"], color="grey", s=25)
        ax.annotate(m.split("/")[-1], (v["cost"], v["quality"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    hull = upper_hull([(v["cost"], v["quality"]) for v in report["single_models"].values()])
    ax.plot(*zip(*hull), color="grey", ls=":", label=f"mix of single models (AIQ {report['mix_single_models_aiq']:.3f})")
    ax.scatter(report["oracle"]["cost"], report["oracle"]["quality"], marker="*", s=150, color="gold", label="oracle")
    ax.scatter(report["random"]["cost"], report["random"]["quality"], marker="x", color="black", label="random")
    for name, r in report["routers"].items():
        mode = max(MODES, key=lambda k: r[k]["aiq"])
        pts = sorted((p["cost"], p["quality"]) for p in r[mode]["curve"])
        ax.plot(*zip(*pts), marker=".", label=f"{name} ({mode}, AIQ {r[mode]['aiq']:.3f})")
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per prompt (USD, log)")
    ax.set_ylabel("mean quality")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(report: Mapping[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=float))
    return path

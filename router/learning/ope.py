"""Off-policy estimators of a deterministic target policy's mean reward from logged feedback.

Data, one entry per (context i, observed action a): the reward r, the probability p that the
logging process observed that action for that context (the logged **propensity** for bandit
feedback; 1 when every model was scored on the prompt, full information), the target policy's
choice π(i), and, for doubly robust, a reward model's predictions q̂(i, ·).

Per context i, with w_i = Σ_a 1[π(i) = a] / p_ia over its observed actions:

* IPS   V = mean_i Σ_a 1[π(i)=a] r_ia / p_ia
* SNIPS V = Σ_i Σ_a 1[π(i)=a] r_ia / p_ia  /  Σ_i w_i
* DR    V = mean_i ( q̂(i, π(i)) + Σ_a 1[π(i)=a] (r_ia − q̂(i, a)) / p_ia )

With full information (p = 1 on every action) all three equal the direct mean reward of π.
Confidence intervals are normal (z = 1.96 by default) on the per-context terms; for SNIPS by the
delta method on (r − V)·w / mean(w). ESS = (Σ w)² / Σ w² counts the contexts that carry weight.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Estimate", "ips", "snips", "dr", "effective_sample_size", "Logged"]


@dataclass(frozen=True)
class Estimate:
    """A policy value with its normal confidence interval [low, high] and effective sample size."""

    value: float
    low: float
    high: float
    ess: float
    n: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Logged:
    """Observed entries: ``context`` (e,) ints in [0, n), ``action`` (e,) ints, ``reward`` (e,),
    ``propensity`` (e,) in (0, 1]; ``n`` contexts."""

    context: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    propensity: np.ndarray
    n: int

    def __post_init__(self) -> None:
        e = len(self.context)
        for name in ("action", "reward", "propensity"):
            if len(getattr(self, name)) != e:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries, context has {e}")
        if e and (np.any(self.propensity <= 0) or np.any(self.propensity > 1)):
            raise ValueError("propensities must be in (0, 1]")


def _matched(log: Logged, target: np.ndarray) -> np.ndarray:
    """Per entry: 1 / p when the target policy picks the entry's action, else 0."""
    target = np.asarray(target)
    return (target[log.context] == log.action) / log.propensity


def _per_context(log: Logged, values: np.ndarray) -> np.ndarray:
    return np.bincount(log.context, weights=values, minlength=log.n)


def effective_sample_size(weights: np.ndarray) -> float:
    """(Σ w)² / Σ w² of per-context weights (0 when all are 0)."""
    w = np.asarray(weights, float)
    s2 = float((w ** 2).sum())
    return float(w.sum() ** 2 / s2) if s2 > 0 else 0.0


def _normal(terms: np.ndarray, value: float, ess: float, n: int, z: float) -> Estimate:
    se = float(terms.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    return Estimate(float(value), float(value - z * se), float(value + z * se), ess, n)


def ips(log: Logged, target: np.ndarray, z: float = 1.96) -> Estimate:
    """Inverse propensity scoring; ``target`` (n,) the policy's action per context."""
    m = _matched(log, target)
    terms = _per_context(log, m * log.reward)
    w = _per_context(log, m)
    return _normal(terms, terms.mean(), effective_sample_size(w), log.n, z)


def snips(log: Logged, target: np.ndarray, z: float = 1.96) -> Estimate:
    """Self-normalised IPS (NaN value when no logged action matches the target)."""
    m = _matched(log, target)
    num = _per_context(log, m * log.reward)
    w = _per_context(log, m)
    if w.sum() <= 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0.0, log.n)
    v = num.sum() / w.sum()
    terms = (num - v * w) / w.mean()
    se = float(terms.std(ddof=1) / np.sqrt(log.n)) if log.n > 1 else float("inf")
    return Estimate(float(v), float(v - z * se), float(v + z * se), effective_sample_size(w), log.n)


def dr(log: Logged, target: np.ndarray, q_hat: np.ndarray, z: float = 1.96) -> Estimate:
    """Doubly robust: ``q_hat`` (n, k) the reward model's prediction for every action."""
    target = np.asarray(target)
    q_hat = np.asarray(q_hat, float)
    m = _matched(log, target)
    resid = m * (log.reward - q_hat[log.context, log.action])
    terms = q_hat[np.arange(log.n), target] + _per_context(log, resid)
    return _normal(terms, terms.mean(), effective_sample_size(_per_context(log, m)), log.n, z)

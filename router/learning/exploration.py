"""ε-greedy exploration outside the pure policy.

With probability ε the served model is drawn uniformly among the decision's k *eligible*
candidates (``RoutingDecision.candidates``: the models that passed the exclusion, vision,
context-window and ``max_cost`` filters, so a draw never breaks a request's constraints). The
policy's choice therefore has propensity 1 − ε + ε/k and every other candidate ε/k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..types import RoutingDecision

__all__ = ["Explored", "explore", "propensity"]


@dataclass(frozen=True)
class Explored:
    """The model to route to first, the probability the logging policy picked it, and whether
    the uniform draw fired (it may land on the policy's own choice)."""

    model: str
    propensity: float
    explored: bool


def propensity(decision: RoutingDecision, model: str, epsilon: float) -> float:
    """P(route to ``model``) under ε-greedy around ``decision``; 0 for a non-candidate."""
    k = len(decision.candidates)
    if model not in decision.candidates:
        return 0.0
    share = epsilon / k
    return 1.0 - epsilon + share if model == decision.model else share


def explore(decision: RoutingDecision, epsilon: float, rng: np.random.Generator) -> Explored:
    """Draw the model to route to. ``epsilon`` in [0, 1]; ``rng`` a seeded
    ``numpy.random.Generator`` in tests. ε = 0 (or a single candidate) never draws."""
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon!r}")
    cands = decision.candidates
    if epsilon == 0.0 or len(cands) <= 1:
        return Explored(decision.model, 1.0, False)
    fired = bool(rng.random() < epsilon)
    model = cands[int(rng.integers(len(cands)))] if fired else decision.model
    return Explored(model, propensity(decision, model, epsilon), fired)

"""A small simulated production log for the demo's loop round (seconds, no shared data).

Users send two kinds of prompts, arithmetic and history essays. The simulated truth differs from
the catalog's priors: the cheapest model is excellent at arithmetic and poor at essays, and a
low-priced model writes better essays than its prior says. The router routes each request (with
ε-greedy exploration), the request is logged with its propensity and the classifier's text, and
the user's thumbs up/down is drawn from the truth.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...learning.exploration import explore
from ...routing import Router
from ...serving.usage.record import UsageRecord, decision_fields, hash_prompt

__all__ = ["simulated_prompts", "true_quality", "simulate_traffic", "policy_value"]

#: kind -> model -> P(good answer); models not named: 0.7 on arithmetic, 0.6 on essays.
_TRUTH = {"arith": {"glm-4-flash": 0.95}, "essay": {"glm-4-flash": 0.2, "gpt-4o-mini": 0.92}}
_OTHERS = {"arith": 0.7, "essay": 0.6}
_PEOPLE = ["Napoleon", "Caesar", "Cleopatra", "Lincoln", "Gandhi", "Bismarck", "Charlemagne", "Ashoka"]


def simulated_prompts(n: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """``n`` (kind, prompt) pairs, alternating arithmetic and essays."""
    out = []
    for i in range(n):
        if i % 2 == 0:
            a, b = rng.integers(10, 9999, 2)
            out.append(("arith", f"Compute {a} {['plus', 'times', 'minus'][i % 3]} {b}; reply with the number only."))
        else:
            out.append(("essay", f"Write a short essay on the historical significance of {_PEOPLE[i % 8]} "
                                 f"(angle {i})."))
    return out


def true_quality(model: str, kind: str) -> float:
    """The simulated probability of a good answer."""
    return _TRUTH[kind].get(model, _OTHERS[kind])


def simulate_traffic(router: Router, store: Any, n: int, epsilon: float, rng: np.random.Generator,
                     router_version: str, t0: float | None = None) -> list[dict[str, Any]]:
    """Route and log ``n`` simulated requests; returns the users' feedback rows
    (``{request_id, thumbs}``) for ``router feedback import``."""
    t0 = time.time() if t0 is None else t0
    pairs = simulated_prompts(n, rng)
    decisions = router.route_many([p for _, p in pairs])
    feedback = []
    for i, ((kind, text), d) in enumerate(zip(pairs, decisions)):
        e = explore(d, epsilon, rng)
        rid = f"sim-{uuid.uuid4().hex[:12]}"
        spec = router.catalog[e.model]
        store.log(UsageRecord(
            request_id=rid, created_at=t0 + i, task=d.task, model=e.model, requested_model="auto", tier=d.tier,
            predicted_quality=d.predicted_quality[e.model], prompt_tokens=d.prompt_tokens, completion_tokens=20,
            cost_usd=spec.cost(d.prompt_tokens, 20), latency_ms=1.0, status="ok",
            chain=[{"model": e.model, "status": "ok", "reason": "explored" if e.explored else "routed",
                    "latency_ms": 1.0}],
            prompt=text, prompt_hash=hash_prompt(text), origin="simulated",
            **decision_fields(d, e, router_version=router_version, classifier_text=router.classifier_text(text))))
        good = rng.random() < true_quality(e.model, kind)
        feedback.append({"request_id": rid, "thumbs": "up" if good else "down", "origin": "human"})
    store.flush()
    return feedback


def policy_value(router: Router, pairs: Sequence[tuple[str, str]]) -> dict[str, float]:
    """Expected true quality and mean estimated cost of ``router``'s choices at its default tier."""
    decisions = router.route_many([p for _, p in pairs])
    q = [true_quality(d.model, kind) for (kind, _), d in zip(pairs, decisions)]
    cost = [router.catalog[d.model].cost(d.prompt_tokens, 20) for d in decisions]
    return {"quality": float(np.mean(q)), "cost_usd": float(np.mean(cost))}

"""The routing policy: pure functions from numbers to a :class:`RoutingDecision`.

No I/O, no model objects. Given, for one request, each model's predicted quality and expected
cost plus the request's constraints, pick a model:

1. Filter: excluded models, vision (a vision request needs a vision model), tools (a request
   with ``tools`` / ``tool_choice`` needs a model with the tools capability), context window
   (prompt tokens + requested output must fit).
2. Cost cap: models whose expected cost exceeds ``max_cost`` are out. If no model is left, raise
   :class:`NoEligibleModelError` with every model's reason.
3. Target: ``min_quality`` if given, else the tier's target; in gap mode (``max_quality_gap``)
   the target is the best predicted quality among the survivors minus the gap.
4. The cheapest model whose predicted quality meets the target wins (ties: higher quality,
   then the model name). If none meets it, the best predicted quality within the cap wins
   (ties: lower cost, then the name), and the decision says so.

:func:`decide` applies the rules to one request and explains its choice; :func:`choose` applies
the same rules to a whole matrix of requests x models at once (the evaluation's form), with
:func:`eligibility` for step 1. A test holds the two equal on random inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError, InvalidRequestError, NoEligibleModelError
from .types import RoutingDecision, TaskPrediction

__all__ = [
    "DEFAULT_TIERS",
    "PolicyConfig",
    "Constraints",
    "Candidate",
    "decide",
    "resolve_target",
    "eligibility",
    "choose",
    "NO_MODEL",
]

#: :func:`choose`'s answer for a request no model may serve (:func:`decide` raises instead).
NO_MODEL = -1
#: Slack in "predicted quality meets the target" (both forms).
_EPS = 1e-12

#: Default quality targets of the three tiers; the catalog's priors are scaled to them.
DEFAULT_TIERS: Mapping[str, float] = {"budget": 0.70, "balanced": 0.80, "quality": 0.88}


@dataclass(frozen=True)
class PolicyConfig:
    """Tier name -> quality target, and the tier used when a request names none."""

    tiers: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TIERS))
    default_tier: str = "balanced"

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ConfigError("policy needs at least one tier")
        for name, target in self.tiers.items():
            if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0.0 <= target <= 1.0:
                raise ConfigError(f"tier {name!r} target must be in [0, 1], got {target!r}")
        if self.default_tier not in self.tiers:
            raise ConfigError(
                f"default tier {self.default_tier!r} is not one of {sorted(self.tiers)}"
            )

    def to_dict(self) -> dict:
        return {"tiers": dict(self.tiers), "default_tier": self.default_tier}

    @classmethod
    def from_dict(cls, data: Mapping) -> "PolicyConfig":
        return cls(tiers=dict(data.get("tiers", DEFAULT_TIERS)), default_tier=data.get("default_tier", "balanced"))


@dataclass(frozen=True)
class Constraints:
    """Per-request constraints. ``max_cost`` is USD for this one call."""

    tier: str | None = None
    min_quality: float | None = None
    max_cost: float | None = None
    max_quality_gap: float | None = None
    require_vision: bool = False
    require_tools: bool = False
    prompt_tokens: int = 0
    max_tokens: int | None = None
    exclude: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.min_quality is not None and not (
            isinstance(self.min_quality, (int, float)) and 0.0 <= self.min_quality <= 1.0
        ):
            raise InvalidRequestError(f"min_quality must be in [0, 1], got {self.min_quality!r}")
        if self.max_cost is not None and not (
            isinstance(self.max_cost, (int, float)) and self.max_cost >= 0 and math.isfinite(self.max_cost)
        ):
            raise InvalidRequestError(f"max_cost must be a non-negative number of USD, got {self.max_cost!r}")
        if self.max_quality_gap is not None and not (
            isinstance(self.max_quality_gap, (int, float)) and 0.0 <= self.max_quality_gap <= 1.0
        ):
            raise InvalidRequestError(f"max_quality_gap must be in [0, 1], got {self.max_quality_gap!r}")
        if self.max_tokens is not None and (
            isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1
        ):
            raise InvalidRequestError(f"max_tokens must be a positive integer, got {self.max_tokens!r}")


@dataclass(frozen=True)
class Candidate:
    """One model's numbers for one request."""

    model: str
    quality: float
    cost: float
    context_window: int
    max_output_tokens: int
    vision: bool = False
    tools: bool = False


def resolve_target(config: PolicyConfig, c: Constraints) -> tuple[float, str | None]:
    """The quality target and tier of a request: ``min_quality`` if given, else its tier's
    target (the default tier when it names none). Raises :class:`InvalidRequestError` for a
    tier the policy does not know (the one place that rule lives)."""
    if c.tier is not None and c.tier not in config.tiers:
        raise InvalidRequestError(f"unknown tier {c.tier!r}; known: {sorted(config.tiers)}")
    if c.min_quality is not None:
        return float(c.min_quality), c.tier
    tier = c.tier if c.tier is not None else config.default_tier
    return float(config.tiers[tier]), tier


def decide(
    task: TaskPrediction,
    candidates: Sequence[Candidate],
    constraints: Constraints,
    config: PolicyConfig,
) -> RoutingDecision:
    """Pick one model for one request; see the module docstring for the rules."""
    target, tier = resolve_target(config, constraints)
    excluded: dict[str, str] = {}
    eligible: list[Candidate] = []
    for cand in candidates:
        out = min(constraints.max_tokens, cand.max_output_tokens) if constraints.max_tokens else 0
        if cand.model in constraints.exclude:
            excluded[cand.model] = "excluded by the caller"
        elif constraints.require_vision and not cand.vision:
            excluded[cand.model] = "request has images; model has no vision"
        elif constraints.require_tools and not cand.tools:
            excluded[cand.model] = "request has tools; model has no tools capability"
        elif constraints.prompt_tokens + out > cand.context_window:
            excluded[cand.model] = (
                f"{constraints.prompt_tokens} prompt + {out} output tokens exceed its "
                f"{cand.context_window}-token context window"
            )
        else:
            eligible.append(cand)
    if not eligible:
        raise NoEligibleModelError("no model can serve this request", excluded)
    within_cap = eligible
    if constraints.max_cost is not None:
        within_cap = [c for c in eligible if c.cost <= constraints.max_cost]
        for c in eligible:
            if c.cost > constraints.max_cost:
                excluded[c.model] = f"expected cost ${c.cost:.6f} exceeds the cap ${constraints.max_cost:.6f}"
        if not within_cap:
            raise NoEligibleModelError(
                f"no eligible model fits the cost cap ${constraints.max_cost:.6f}", excluded
            )
    by_cost = sorted(within_cap, key=lambda c: (c.cost, -c.quality, c.model))
    if constraints.max_quality_gap is not None and constraints.min_quality is None:
        best_q = max(c.quality for c in by_cost)
        target = best_q - float(constraints.max_quality_gap)
        meet_rule = "cheapest_within_gap"
        meet_reason = f"cheapest model within {constraints.max_quality_gap:g} of the best predicted quality {best_q:.3f}"
    else:
        meet_rule = "cheapest_meeting_target"
        meet_reason = f"cheapest model with predicted quality >= {target:.3f}"
    meeting = [c for c in by_cost if c.quality >= target - _EPS]
    if meeting:
        chosen, rule, reason = meeting[0], meet_rule, meet_reason
    else:
        chosen = max(by_cost, key=lambda c: (c.quality, -c.cost))
        rule = "best_within_cap"
        reason = (
            f"no model reached the target {target:.3f}"
            + (f" within the cost cap ${constraints.max_cost:.6f}" if constraints.max_cost is not None else "")
            + f"; took the best predicted quality {chosen.quality:.3f}"
        )
    return RoutingDecision(
        model=chosen.model,
        task=task.task,
        task_confidence=float(task.confidence),
        task_source=task.source,
        complexity=task.complexity,
        rule=rule,
        reason=reason,
        target_quality=round(float(target), 6),
        tier=tier,
        estimated_cost=float(chosen.cost),
        predicted_quality={c.model: float(c.quality) for c in candidates},
        estimated_costs={c.model: float(c.cost) for c in candidates},
        candidates=tuple(c.model for c in by_cost),
        excluded=excluded,
        prompt_tokens=int(constraints.prompt_tokens),
    )


def eligibility(
    prompt_tokens: np.ndarray,
    context_window: np.ndarray,
    max_output_tokens: np.ndarray,
    *,
    max_tokens: int | None = None,
    require_vision: np.ndarray | None = None,
    vision: np.ndarray | None = None,
    excluded: np.ndarray | None = None,
    require_tools: np.ndarray | None = None,
    tools: np.ndarray | None = None,
) -> np.ndarray:
    """Step 1 of the rules for n requests x m models -> bool array (n, m).

    ``prompt_tokens``, ``require_vision``, ``require_tools``: arrays (n,); ``context_window``,
    ``max_output_tokens``, ``vision``, ``tools``, ``excluded``: arrays (m,) (``excluded``: bool,
    the caller's exclusions). Same filter as :func:`decide`."""
    prompt_tokens = np.asarray(prompt_tokens, dtype=np.int64)
    context_window = np.asarray(context_window, dtype=np.int64)
    out_tokens = (np.minimum(int(max_tokens), np.asarray(max_output_tokens, dtype=np.int64))
                  if max_tokens else np.zeros_like(context_window))
    ok = prompt_tokens[:, None] + out_tokens[None, :] <= context_window[None, :]
    if require_vision is not None and vision is not None:
        ok &= ~(np.asarray(require_vision, bool)[:, None] & ~np.asarray(vision, bool)[None, :])
    if require_tools is not None and tools is not None:
        ok &= ~(np.asarray(require_tools, bool)[:, None] & ~np.asarray(tools, bool)[None, :])
    if excluded is not None:
        ok &= ~np.asarray(excluded, bool)[None, :]
    return ok


def choose(
    quality: np.ndarray,
    cost: np.ndarray,
    models: Sequence[str],
    *,
    target: float | np.ndarray | None = None,
    gap: float | np.ndarray | None = None,
    eligible: np.ndarray | None = None,
    max_cost: float | np.ndarray | None = None,
) -> np.ndarray:
    """The rules of :func:`decide` for n requests at once -> int array (n,) of column indices.

    ``quality``, ``cost``: arrays (n, m) of predicted quality and expected cost; ``models``: the
    m column names (the last tie-break). Exactly one of ``target`` (a quality target, as
    ``min_quality`` or a tier's) and ``gap`` (``max_quality_gap``): a scalar or array (n,).
    ``eligible``: bool (n, m) from :func:`eligibility` (default: all); ``max_cost``: the cap,
    scalar or (n,). A request with no model eligible within the cap gets :data:`NO_MODEL`."""
    q = np.asarray(quality, dtype=float)
    c = np.asarray(cost, dtype=float)
    if q.ndim != 2 or q.shape != c.shape or q.shape[1] != len(models):
        raise ValueError(f"quality {q.shape} and cost {c.shape} must be (n, {len(models)})")
    if (target is None) == (gap is None):
        raise ValueError("give exactly one of target and gap")
    n, m = q.shape
    ok = np.ones((n, m), bool) if eligible is None else np.asarray(eligible, bool).copy()
    if max_cost is not None:
        ok &= c <= np.broadcast_to(np.asarray(max_cost, dtype=float), (n,))[:, None]
    if gap is not None:
        best = np.where(ok, q, -np.inf).max(1) if m else np.full(n, -np.inf)
        goal = best - np.broadcast_to(np.asarray(gap, dtype=float), (n,))
    else:
        goal = np.broadcast_to(np.asarray(target, dtype=float), (n,))
    name_rank = np.broadcast_to(np.argsort(np.argsort(np.asarray(models, dtype=object))), (n, m))
    rows = np.arange(n)
    # cheapest meeting the target: order by (cost, -quality, name); np.lexsort's last key is primary
    by_cost = np.lexsort((name_rank, -q, c), axis=1)
    meets = ok & (q >= goal[:, None] - _EPS)
    meets_sorted = np.take_along_axis(meets, by_cost, 1)
    cheapest = by_cost[rows, meets_sorted.argmax(1)] if m else np.zeros(n, int)
    # none meets it: the best quality within the cap, by (-quality, cost, name)
    by_quality = np.lexsort((name_rank, c, -q), axis=1)
    ok_sorted = np.take_along_axis(ok, by_quality, 1)
    best_q = by_quality[rows, ok_sorted.argmax(1)] if m else np.zeros(n, int)
    out = np.where(meets.any(1), cheapest, best_q)
    return np.where(ok.any(1), out, NO_MODEL).astype(np.int64)

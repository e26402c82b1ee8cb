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

A trained router's policy may carry a **price curve** (``PolicyConfig.price_curve``, fitted on
the training prompts): then a target (tier or ``min_quality``) is met *on average, at the least
cost*: the target maps to a price ``lam`` (quality points per USD) and each request takes the
model with the best predicted quality net of cost, ``quality - lam * cost`` (ties: lower cost,
higher quality, the name). Over the traffic the curve was fitted on, that is the cheapest
assignment whose mean predicted quality meets the target (the Lagrangian of "least cost s.t.
mean quality >= target"); per request it is "the cheapest model unless a dearer one's predicted
gain is worth its price". With an ``anchor`` (the model best on average in training), that model's
value is credited ``anchor_margin``: leaving it takes that much more predicted value, the
evidence its out-of-fold predictions showed a departure needs (fitted by ``router train``).
Without a curve (the catalog priors, the original tables) rule 4
holds as written. Gap mode is unchanged.

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
    "format_usd",
    "resolve_target",
    "eligibility",
    "choose",
    "NO_MODEL",
    "price_for_target",
]

#: :func:`choose`'s answer for a request no model may serve (:func:`decide` raises instead).
NO_MODEL = -1
#: Slack in "predicted quality meets the target" (both forms).
_EPS = 1e-12

#: Default quality targets of the three tiers; the catalog's priors are scaled to them.
DEFAULT_TIERS: Mapping[str, float] = {"budget": 0.70, "balanced": 0.80, "quality": 0.88}


@dataclass(frozen=True)
class PolicyConfig:
    """Tier name -> quality target, and the tier used when a request names none.

    ``price_curve``: optional ``(mean quality, price)`` pairs, price rising as quality falls
    (see the module docstring); empty = targets are per-request thresholds (rule 4).
    ``anchor``, ``anchor_margin``: the model credited in the value rule, and by how much."""

    tiers: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TIERS))
    default_tier: str = "balanced"
    price_curve: tuple[tuple[float, float], ...] = ()
    anchor: str | None = None
    anchor_margin: float = 0.0

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
        curve = tuple((float(q), float(p)) for q, p in self.price_curve)
        if any(not (0.0 <= q <= 1.0 and p >= 0.0 and math.isfinite(p)) for q, p in curve):
            raise ConfigError("price_curve needs (quality in [0, 1], finite price >= 0) pairs")
        if any(b[1] <= a[1] or b[0] > a[0] for a, b in zip(curve, curve[1:])):
            raise ConfigError("price_curve prices must rise, and its qualities not rise, along the curve")
        object.__setattr__(self, "price_curve", curve)
        if not (isinstance(self.anchor_margin, (int, float)) and 0.0 <= self.anchor_margin <= 1.0):
            raise ConfigError(f"anchor_margin must be in [0, 1], got {self.anchor_margin!r}")

    def price(self, target: float) -> float | None:
        """The price a quality target maps to on :attr:`price_curve` (``None`` without one)."""
        return price_for_target(self.price_curve, target) if self.price_curve else None

    def to_dict(self) -> dict:
        out = {"tiers": dict(self.tiers), "default_tier": self.default_tier}
        if self.price_curve:
            out["price_curve"] = [list(pt) for pt in self.price_curve]
        if self.anchor is not None:
            out.update(anchor=self.anchor, anchor_margin=self.anchor_margin)
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> "PolicyConfig":
        return cls(tiers=dict(data.get("tiers", DEFAULT_TIERS)), default_tier=data.get("default_tier", "balanced"),
                   price_curve=tuple(tuple(pt) for pt in data.get("price_curve", ())),
                   anchor=data.get("anchor"), anchor_margin=float(data.get("anchor_margin", 0.0)))


def price_for_target(curve: Sequence[tuple[float, float]], target: float) -> float:
    """``curve``: (mean quality, price) pairs, price rising -> the price for ``target``: linear
    between the points, 0 (quality first) above the curve's best quality, its highest price
    below its lowest quality."""
    qs = np.array([q for q, _ in curve], dtype=float)[::-1]  # rising
    ps = np.array([p for _, p in curve], dtype=float)[::-1]
    if target >= qs[-1]:
        return 0.0
    return float(np.interp(target, qs, ps))


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
            raise InvalidRequestError(f"min_quality must be in [0, 1], got {self.min_quality!r}", param="min_quality")
        if self.max_cost is not None and not (
            isinstance(self.max_cost, (int, float)) and self.max_cost >= 0 and math.isfinite(self.max_cost)
        ):
            raise InvalidRequestError(f"max_cost must be a non-negative number of USD, got {self.max_cost!r}", param="max_cost")
        if self.max_quality_gap is not None and not (
            isinstance(self.max_quality_gap, (int, float)) and 0.0 <= self.max_quality_gap <= 1.0
        ):
            raise InvalidRequestError(f"max_quality_gap must be in [0, 1], got {self.max_quality_gap!r}", param="max_quality_gap")
        if self.max_tokens is not None and (
            isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1
        ):
            raise InvalidRequestError(f"max_tokens must be a positive integer, got {self.max_tokens!r}", param="max_tokens")


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
        raise InvalidRequestError(f"unknown tier {c.tier!r}; known: {sorted(config.tiers)}", param="model")
    if c.min_quality is not None:
        return float(c.min_quality), c.tier
    tier = c.tier if c.tier is not None else config.default_tier
    return float(config.tiers[tier]), tier


def format_usd(x: float) -> str:
    """Dollars with six decimals, or three significant digits below a millionth (never a
    ``$0.000000`` that hides a non-zero amount, e.g. a tiny cost cap)."""
    return f"${x:.3g}" if x != 0 and abs(x) < 5e-7 else f"${x:.6f}"


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
                excluded[c.model] = f"expected cost {format_usd(c.cost)} exceeds the cap {format_usd(constraints.max_cost)}"
        if not within_cap:
            raise NoEligibleModelError(
                f"no eligible model fits the cost cap {format_usd(constraints.max_cost)}", excluded
            )
    by_cost = sorted(within_cap, key=lambda c: (c.cost, -c.quality, c.model))
    gap_mode = constraints.max_quality_gap is not None and constraints.min_quality is None
    price = None if gap_mode else config.price(target)
    if price is not None:
        credit = {config.anchor: float(config.anchor_margin)} if config.anchor is not None else {}
        chosen = min(by_cost, key=lambda c: (-(c.quality - price * c.cost + credit.get(c.model, 0.0)), c.cost,
                                             -c.quality, c.model))
        rule = "best_value"
        reason = (f"best predicted quality net of cost at {price:.6g} quality per USD, the price at which "
                  f"the target {target:.3f} is met on average at the least cost")
    else:
        chosen, rule, reason, target = _threshold_choice(by_cost, target, constraints, gap_mode)
    if constraints.max_tokens and constraints.max_tokens > chosen.max_output_tokens:
        reason += (f"; max_tokens {constraints.max_tokens} is capped at the model's {chosen.max_output_tokens} "
                   "output tokens")
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


def _threshold_choice(by_cost: list[Candidate], target: float, constraints: Constraints,
                      gap_mode: bool) -> tuple[Candidate, str, str, float]:
    """Rules 3-4 on the survivors sorted by (cost, -quality, name) -> (chosen, rule, reason, target)."""
    if gap_mode:
        best_q = max(c.quality for c in by_cost)
        target = best_q - float(constraints.max_quality_gap)
        meet_rule = "cheapest_within_gap"
        meet_reason = f"cheapest model within {constraints.max_quality_gap:g} of the best predicted quality {best_q:.3f}"
    else:
        meet_rule = "cheapest_meeting_target"
        meet_reason = f"cheapest model with predicted quality >= {target:.3f}"
    meeting = [c for c in by_cost if c.quality >= target - _EPS]
    if meeting:
        return meeting[0], meet_rule, meet_reason, target
    chosen = max(by_cost, key=lambda c: (c.quality, -c.cost))
    reason = (
        f"no model reached the target {target:.3f}"
        + (f" within the cost cap {format_usd(constraints.max_cost)}" if constraints.max_cost is not None else "")
        + f"; took the best predicted quality {chosen.quality:.3f}"
    )
    return chosen, "best_within_cap", reason, target


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
    price: float | np.ndarray | None = None,
    eligible: np.ndarray | None = None,
    max_cost: float | np.ndarray | None = None,
    anchor: str | None = None,
    anchor_margin: float = 0.0,
) -> np.ndarray:
    """The rules of :func:`decide` for n requests at once -> int array (n,) of column indices.

    ``quality``, ``cost``: arrays (n, m) of predicted quality and expected cost; ``models``: the
    m column names (the last tie-break). Exactly one of ``target`` (a quality target, as
    ``min_quality`` or a tier's), ``gap`` (``max_quality_gap``) and ``price`` (a target already
    mapped through :attr:`PolicyConfig.price_curve`, see :meth:`PolicyConfig.price`): a scalar
    or array (n,). ``anchor``, ``anchor_margin``: the value rule's credit (price only; see
    :class:`PolicyConfig`).
    ``eligible``: bool (n, m) from :func:`eligibility` (default: all); ``max_cost``: the cap,
    scalar or (n,). A request with no model eligible within the cap gets :data:`NO_MODEL`."""
    q = np.asarray(quality, dtype=float)
    c = np.asarray(cost, dtype=float)
    if q.ndim != 2 or q.shape != c.shape or q.shape[1] != len(models):
        raise ValueError(f"quality {q.shape} and cost {c.shape} must be (n, {len(models)})")
    if sum(x is not None for x in (target, gap, price)) != 1:
        raise ValueError("give exactly one of target, gap and price")
    n, m = q.shape
    ok = np.ones((n, m), bool) if eligible is None else np.asarray(eligible, bool).copy()
    if max_cost is not None:
        ok &= c <= np.broadcast_to(np.asarray(max_cost, dtype=float), (n,))[:, None]
    name_rank = np.broadcast_to(np.argsort(np.argsort(np.asarray(models, dtype=object))), (n, m))
    rows = np.arange(n)
    if price is not None:  # best quality net of cost; ties: lower cost, higher quality, the name
        lam = np.broadcast_to(np.asarray(price, dtype=float), (n,))[:, None]
        value = q - lam * c
        if anchor is not None and anchor in models:
            value[:, list(models).index(anchor)] += float(anchor_margin)
        by_value = np.lexsort((name_rank, -q, c, -value), axis=1)
        ok_sorted = np.take_along_axis(ok, by_value, 1)
        out = by_value[rows, ok_sorted.argmax(1)] if m else np.zeros(n, int)
        return np.where(ok.any(1), out, NO_MODEL).astype(np.int64)
    if gap is not None:
        best = np.where(ok, q, -np.inf).max(1) if m else np.full(n, -np.inf)
        goal = best - np.broadcast_to(np.asarray(gap, dtype=float), (n,))
    else:
        goal = np.broadcast_to(np.asarray(target, dtype=float), (n,))
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

"""The cascade policy, pure: which model to call next after scoring the answers so far.

No I/O and no model objects, like :mod:`router.policy`. For one request the caller holds each
eligible model's predicted quality and expected cost (the router's pre-call estimate, after the
vision / context-window filters) and the answers it has paid for so far, each with the answer
scorer's P(good). One call of :func:`cascade_step` says what to do next:

1. No answer yet: call the cheapest model whose predicted quality meets the *lower* target
   ``config.target`` (none meets it: the best predicted), within ``max_cost``; with
   ``config.gap`` set, the target is instead the best affordable predicted quality minus
   ``gap`` (the policy's gap rule, which traces a better frontier on RouterBench). With
   ``config.agree`` the two cheapest such models are called together (one step, two calls) and
   each answer is scored with the other as agreement evidence.
2. Some answer scores ``>= config.accept``: accept the best-scored answer.
3. ``config.max_steps`` steps taken, or nothing affordable left: stop with the best-scored answer.
4. Otherwise escalate: among models not yet tried, predicted stronger than every tried one and
   affordable with what is left of ``max_cost``, the cheapest meeting ``config.escalate_target``
   (``None``: the best predicted one).

The accept threshold is set from a quality target the way tiers are: the scorer is calibrated,
so ``accept = q`` keeps the answers it accepts good with probability about ``q``
(:meth:`CascadeConfig.from_target`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .errors import InvalidRequestError

__all__ = ["CascadeConfig", "Attempt", "CascadeAction", "cascade_step"]


@dataclass(frozen=True)
class CascadeConfig:
    """``target``: the first step's (lower) pre-call quality target; ``accept``: the scorer
    probability at or above which an answer is kept; ``max_steps``: sequential steps at most
    (calls in one step run in parallel); ``agree``: ask two cheap models in the first step;
    ``escalate_target``: the pre-call target of an escalation (``None``: the best predicted);
    ``gap``: when set, the first step's target is the best predicted quality minus ``gap``."""

    target: float = 0.6
    accept: float = 0.8
    max_steps: int = 2
    agree: bool = False
    escalate_target: float | None = None
    gap: float | None = None

    def __post_init__(self) -> None:
        for name in ("target", "accept"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise InvalidRequestError(f"cascade {name} must be in [0, 1], got {v!r}")
        if self.gap is not None and not 0.0 <= self.gap <= 1.0:
            raise InvalidRequestError(f"cascade gap must be in [0, 1], got {self.gap!r}")
        if self.escalate_target is not None and not 0.0 <= self.escalate_target <= 1.0:
            raise InvalidRequestError(f"cascade escalate_target must be in [0, 1], got {self.escalate_target!r}")
        if not isinstance(self.max_steps, int) or isinstance(self.max_steps, bool) or self.max_steps < 1:
            raise InvalidRequestError(f"cascade max_steps must be an integer >= 1, got {self.max_steps!r}")

    @classmethod
    def from_target(cls, quality: float, *, lower_by: float = 0.2, max_steps: int = 2,
                    agree: bool = False) -> "CascadeConfig":
        """A cascade for a quality target ``quality`` (a tier's target): accept answers the
        calibrated scorer rates ``>= quality``; start from the cheapest model predicted to meet
        ``quality - lower_by``."""
        return cls(target=max(0.0, quality - lower_by), accept=quality, max_steps=max_steps, agree=agree)


@dataclass(frozen=True)
class Attempt:
    """One paid call: the model, what it cost, the step it belonged to (1-based) and the
    scorer's P(good) of its answer (``None`` until scored)."""

    model: str
    cost: float
    step: int
    score: float | None = None


@dataclass(frozen=True)
class CascadeAction:
    """``kind``: ``"call"`` (call ``models``, in parallel, as step ``step``), ``"accept"`` (return
    the answer of ``models[0]``) or ``"stop"`` (return the answer of ``models[0]``, the best
    scored, or nothing when ``models`` is empty: no model fits ``max_cost``)."""

    kind: Literal["call", "accept", "stop"]
    models: tuple[str, ...]
    step: int
    reason: str


def _best_scored(history: Sequence[Attempt]) -> Attempt:
    return max(history, key=lambda a: (a.score, -a.cost))


def cascade_step(
    models: Sequence[str],
    quality: Sequence[float] | np.ndarray,
    cost: Sequence[float] | np.ndarray,
    history: Sequence[Attempt],
    config: CascadeConfig,
    *,
    max_cost: float | None = None,
) -> CascadeAction:
    """The next action for one request (see the module docstring for the rules).

    ``models`` (m,), ``quality`` (m,) and ``cost`` (m,): the eligible models and their predicted
    quality and expected cost; ``history``: the attempts so far, every one scored; ``max_cost``:
    the request's cap on the total paid over all steps (USD)."""
    q, c = np.asarray(quality, float), np.asarray(cost, float)
    if not (len(models) == len(q) == len(c)):
        raise InvalidRequestError(f"cascade_step needs one quality and cost per model; got {len(models)} models, "
                                  f"{len(q)} qualities, {len(c)} costs")
    if any(a.score is None for a in history):
        raise InvalidRequestError("score every answer before asking for the next cascade step")
    spent = float(sum(a.cost for a in history))
    budget = math.inf if max_cost is None else float(max_cost) - spent
    tried = {a.model for a in history}
    open_ = [j for j, m in enumerate(models) if m not in tried and c[j] <= budget + 1e-15]
    if not history:
        if not open_:
            return CascadeAction("stop", (), 0, "no model within max_cost")
        goal = config.target if config.gap is None else max(q[j] for j in open_) - config.gap
        meets = sorted((j for j in open_ if q[j] >= goal - 1e-12), key=lambda j: (c[j], -q[j]))
        if not meets:
            best = max(open_, key=lambda j: (q[j], -c[j]))
            return CascadeAction("call", (models[best],), 1, f"no model predicted >= {goal:.2f}; best predicted")
        pick = [meets[0]]
        if config.agree and len(meets) > 1 and c[meets[0]] + c[meets[1]] <= budget + 1e-15:
            pick.append(meets[1])
        return CascadeAction("call", tuple(models[j] for j in pick), 1,
                             f"cheapest predicted >= {goal:.2f}" + (" (two, to compare)" if len(pick) > 1 else ""))
    best = _best_scored(history)
    step = max(a.step for a in history)
    if best.score >= config.accept - 1e-12:
        return CascadeAction("accept", (best.model,), step, f"score {best.score:.2f} >= {config.accept:.2f}")
    if step >= config.max_steps:
        return CascadeAction("stop", (best.model,), step, f"max_steps {config.max_steps} reached")
    index = {m: j for j, m in enumerate(models)}
    floor = max((q[index[m]] for m in tried if m in index), default=-math.inf)
    stronger = [j for j in open_ if q[j] > floor + 1e-12]
    if not stronger:
        return CascadeAction("stop", (best.model,), step, "no stronger model within max_cost")
    goal = config.escalate_target
    meets = [j for j in stronger if goal is not None and q[j] >= goal - 1e-12]
    nxt = min(meets, key=lambda j: (c[j], -q[j])) if meets else max(stronger, key=lambda j: (q[j], -c[j]))
    return CascadeAction("call", (models[nxt],), step + 1,
                         f"score {best.score:.2f} < {config.accept:.2f}; escalate")

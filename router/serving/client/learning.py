"""The learning loop's side of a request: the ``escalate`` option's forms, the ``explore``
opt-out, the exploration draw and the log row's learning fields.

``escalate`` (client option and request option) is one of:

* ``False``: never re-ask;
* ``"checks"`` (the default; ``True`` means the same): re-ask a stronger model when a check of the
  client's :class:`~.policies.EscalationPolicy` fires on the answer;
* ``{"target": q, "max_steps": n, "agree": bool}``: the learned cascade
  (:mod:`router.cascade`): start from the cheapest model predicted to meet ``q - 0.2``, score
  each answer with :meth:`Router.score_answers <router.Router.score_answers>` and escalate while
  the score is below ``q``, at most ``n`` sequential steps (default 2) within ``max_cost``;
  ``agree`` asks the two cheapest models in the first step and scores each with the other as
  agreement evidence. ``target`` defaults to the tier's target. Streams never cascade.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import InvalidRequestError
from ...learning.exploration import Explored, explore

__all__ = ["CascadeRequest", "parse_escalate", "parse_explore", "Explorer", "CASCADE_KEYS"]

#: The keys of the ``escalate`` option's cascade form.
CASCADE_KEYS = frozenset({"target", "max_steps", "agree"})
_FORMS = "false, \"checks\" or {\"target\": 0..1, \"max_steps\": n >= 1, \"agree\": bool}"


@dataclass(frozen=True)
class CascadeRequest:
    """The cascade a request asked for: ``target`` (``None``: the tier's target), ``max_steps``
    and ``agree``."""

    target: float | None = None
    max_steps: int = 2
    agree: bool = False


def parse_escalate(value: Any) -> tuple[bool, CascadeRequest | None]:
    """``escalate``'s value -> (escalation on, the cascade asked for or ``None`` for the checks).

    :class:`InvalidRequestError` names what is wrong."""
    if value is False:
        return False, None
    if value is True or value == "checks":
        return True, None
    if not isinstance(value, Mapping):
        raise InvalidRequestError(f"router option escalate must be {_FORMS}; got {value!r}", param="escalate")
    unknown = set(value) - CASCADE_KEYS
    if unknown:
        raise InvalidRequestError(f"unknown escalate key(s) {sorted(unknown)}; known: {sorted(CASCADE_KEYS)}", param="escalate")
    target = value.get("target")
    if target is not None and (isinstance(target, bool) or not isinstance(target, (int, float))
                               or not 0.0 <= float(target) <= 1.0):
        raise InvalidRequestError(f"escalate target must be a number in [0, 1], got {target!r}", param="escalate")
    steps = value.get("max_steps", 2)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InvalidRequestError(f"escalate max_steps must be an integer >= 1, got {steps!r}", param="escalate")
    agree = value.get("agree", False)
    if not isinstance(agree, bool):
        raise InvalidRequestError(f"escalate agree must be true or false, got {agree!r}", param="escalate")
    return True, CascadeRequest(None if target is None else float(target), steps, agree)


def parse_explore(value: Any) -> bool:
    """The per-request ``explore`` opt-out: ``true`` (the default) or ``false``."""
    if not isinstance(value, bool):
        raise InvalidRequestError(f"router option explore must be true or false, got {value!r}", param="explore")
    return value


class Explorer:
    """ε-greedy exploration with its own random generator (seed it in tests): the draw lives
    here, outside the pure policy. ``epsilon`` in [0, 1]; 0 never draws."""

    def __init__(self, epsilon: float = 0.0, rng: np.random.Generator | None = None):
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"exploration must be a number in [0, 1], got {epsilon!r}")
        self.epsilon = float(epsilon)
        self.rng = rng if rng is not None else np.random.default_rng()
        self._lock = threading.Lock()  # a Generator is not safe to share between threads

    def draw(self, decision: Any) -> Explored:
        """The model to route ``decision``'s request to first, and its propensity."""
        with self._lock:
            return explore(decision, self.epsilon, self.rng)

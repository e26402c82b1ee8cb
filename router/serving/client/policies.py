"""The client's policies: retries and fallback (:class:`RetryPolicy`), escalation
(:class:`EscalationPolicy` and its default checks) and per-model cooldowns (:class:`Health`)."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["RetryPolicy", "EscalationPolicy", "Health", "code_placeholder", "reasoning_uncertainty",
           "DEFAULT_CHECKS"]

log = logging.getLogger("router.serving.client")


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one model, then fallback to others.

    ``max_attempts`` per model (1 = no retry). Backoff before attempt ``k + 1`` is uniform in
    ``[0, min(max_delay, base_delay * 2 ** (k - 1))]`` (full jitter); a ``Retry-After`` (or
    ``retry-after-ms``) header replaces it, capped at ``max_retry_after`` seconds. At most
    ``max_fallbacks`` other models are tried after the first. ``fallback_explicit`` lets a
    request that named a model fall back to routed ones. ``stream_usage`` asks streaming
    providers for a final usage chunk (``stream_options.include_usage``) so costs are exact; it
    reaches the caller only when the caller asked for it.
    """

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0
    jitter: bool = True
    fallback: bool = True
    max_fallbacks: int = 3
    fallback_explicit: bool = False
    stream_usage: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must be >= 0")
        if self.max_fallbacks < 0:
            raise ValueError("max_fallbacks must be >= 0")

    def delay(self, attempt: int, retry_after: float | None = None,
              rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        cap = min(self.max_delay, self.base_delay * 2 ** max(attempt - 1, 0))
        if not self.jitter:
            return cap
        return (rng or random).uniform(0.0, cap)


def code_placeholder(text: str, task: str | None) -> bool:
    """The original design's code check: a code answer that still holds a TODO or a placeholder."""
    return task == "code" and ("TODO" in text or "placeholder" in text.lower())


_UNCERTAIN = ("might be wrong", "not entirely sure", "could be", "possibly")


def reasoning_uncertainty(text: str, task: str | None) -> bool:
    """The original design's reasoning check: the answer hedges ("might be wrong", "possibly"...)."""
    if task != "reasoning":
        return False
    low = text.lower()
    return any(marker in low for marker in _UNCERTAIN)


#: The original design's ``should_escalate``, as two checks.
DEFAULT_CHECKS: tuple[Callable[[str, str | None], bool], ...] = (code_placeholder, reasoning_uncertainty)


def _check_name(check: Callable[..., object]) -> str:
    name = getattr(check, "__name__", None)  # functions and lambdas have one; callable objects may not
    return name if isinstance(name, str) else type(check).__name__


@dataclass(frozen=True)
class EscalationPolicy:
    """Re-ask a stronger model when a check fires on a (non-streaming) answer.

    ``checks`` are callables ``(response_text, task) -> bool``; a check that raises counts as not
    firing. At most ``max_escalations`` re-asks per request. The stronger model is the cheapest
    routing candidate whose predicted quality exceeds the current one by more than
    ``min_quality_gain``; it is asked only if the cost so far plus its estimated cost stays within
    the request's ``max_cost`` (when one is given).
    """

    checks: Sequence[Callable[[str, str | None], bool]] = DEFAULT_CHECKS
    max_escalations: int = 1
    min_quality_gain: float = 0.0

    def triggered(self, text: str, task: str | None) -> str | None:
        """The name of the first check that fires, else ``None``."""
        for check in self.checks:
            try:
                if check(text, task):
                    return _check_name(check)
            except Exception:  # a broken custom check must not fail the request
                log.warning("escalation check %r raised; ignored", check, exc_info=True)
        return None


class Health:
    """Consecutive failures per model; ``threshold`` in a row cools the model for ``cooldown_s``."""

    def __init__(self, threshold: int, cooldown_s: float, clock: Callable[[], float]):
        if threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.threshold, self.cooldown_s, self.clock = threshold, float(cooldown_s), clock
        self._lock = threading.Lock()
        self._fails: dict[str, int] = {}
        self._until: dict[str, float] = {}

    def cooling(self) -> frozenset[str]:
        if not self._until:
            return frozenset()
        now = self.clock()
        with self._lock:
            return frozenset(m for m, t in self._until.items() if t > now)

    def is_cooling(self, model: str) -> bool:
        t = self._until.get(model)
        return t is not None and t > self.clock()

    def success(self, model: str) -> None:
        """A model that answered is healthy: its count and any cooldown end."""
        if self._fails.get(model) or model in self._until:
            with self._lock:
                self._fails[model] = 0
                self._until.pop(model, None)

    def failure(self, model: str) -> bool:
        """Count a failure; True when it starts a cooldown."""
        with self._lock:
            n = self._fails.get(model, 0) + 1
            if n >= self.threshold:
                self._fails[model] = 0
                self._until[model] = self.clock() + self.cooldown_s
                return True
            self._fails[model] = n
            return False

    def snapshot(self) -> dict[str, dict[str, float]]:
        now = self.clock()
        with self._lock:
            names = set(self._fails) | set(self._until)
            return {m: {"consecutive_failures": self._fails.get(m, 0),
                        "cooldown_left_s": max(0.0, self._until.get(m, now) - now)} for m in sorted(names)}

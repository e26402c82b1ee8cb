"""The sans-I/O core: one request's retries, fallback and escalation as a generator of actions.

``Machine.run(state, decision)`` yields :class:`Call` ("send this to that model"),
:class:`Sleep` ("wait this long") and :class:`Route` ("route again, without these models": a
fallback; the async driver runs a learned router's routing off the event loop) and is sent a
:class:`Result` for each call and the decision (or the ``NoEligibleModelError``) for each route; it returns
``(model, answer)`` or raises :class:`~router.errors.UpstreamError`. The sync and async drivers
(:mod:`.drivers`) perform the actions, so both clients behave identically.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import NoEligibleModelError, RouterError, UpstreamError
from .adapt import adapt_params
from .cascading import Work, run_cascade
from .failures import classify
from .learning import Explorer, parse_escalate
from .options import RequestState, parse_options
from .policies import EscalationPolicy, Health, RetryPolicy
from .records import log_rejected, response_text, tokens

__all__ = ["Machine", "Call", "Sleep", "Result", "Work", "Route", "DEFAULT_DEADLINE"]

#: Seconds a request may take, all attempts, fallbacks and backoff included, unless it says otherwise.
DEFAULT_DEADLINE = 120.0


@dataclass
class Call:
    model: str
    params: dict[str, Any]
    stream: bool
    timeout: float | None


@dataclass
class Sleep:
    seconds: float


@dataclass
class Route:
    """Route the request again with ``exclude`` left out (sent back: a decision, or the
    exception routing raised, e.g. :class:`NoEligibleModelError`)."""

    machine: Machine
    state: RequestState
    exclude: list[str]

    def perform(self) -> Any:
        try:
            return self.machine.route(self.state, self.exclude)
        except Exception as exc:  # NoEligibleModelError ends the fallback; anything else is re-raised there
            return exc


@dataclass
class Result:
    ok: bool
    value: Any = None
    error: BaseException | None = None
    latency_ms: float = 0.0


class Machine:
    """What one routed client knows between requests: router, policies, cooldowns, usage log."""

    def __init__(self, router: Any, *, usage: Any, retry: RetryPolicy, escalation: EscalationPolicy | None,
                 timeout: float, cooldown_s: float, failure_threshold: int, clock: Callable[[], float],
                 explorer: Explorer | None = None, escalate: Any = "checks", router_version: str | None = None,
                 deadline: float | None = DEFAULT_DEADLINE):
        parse_escalate(escalate)  # a bad client default fails at construction, not per request
        self.escalate_default = escalate
        self.explorer = explorer if explorer is not None else Explorer(0.0)
        self.router_version = router_version
        self.router = router
        self.catalog = router.catalog
        self.usage = usage
        self.retry = retry
        self.escalation = escalation
        self.timeout = timeout
        if deadline is not None and not (deadline > 0 and math.isfinite(deadline)):
            raise ValueError(f"deadline must be a positive number of seconds or None, got {deadline!r}")
        self.deadline = deadline
        self.health = Health(failure_threshold, cooldown_s, clock)
        self.rng = random.Random()

    # -- parsing and routing -------------------------------------------------------------------
    def start(self, kwargs: Mapping[str, Any], request_id: str, client_tag: str | None) -> RequestState:
        """Parse the request; a rejected one is logged (status ``rejected``) and re-raised."""
        try:
            router = self.router  # one router decides a whole request, even across a champion swap
            st = parse_options(kwargs, request_id=request_id, client_tag=client_tag, catalog=router.catalog,
                               tiers=router.policy.tiers, escalate_default=self.escalate_default)
        except RouterError as exc:
            log_rejected(self.usage, request_id, kwargs.get("model"), exc, client_tag, bool(kwargs.get("stream")))
            raise
        if st.timeout is None:
            st.timeout = self.timeout
        st.router, st.router_version = router, self.router_version
        if st.deadline is None:
            st.deadline = self.deadline
        if st.deadline is not None:
            st.deadline_at = time.monotonic() + st.deadline
        return st

    def swap(self, router: Any, version: str | None = None) -> None:
        """Serve ``router`` (e.g. a newly promoted champion) from the next request on; requests in
        flight finish with the router they started with."""
        self.router, self.catalog, self.router_version = router, router.catalog, version

    def route(self, st: RequestState, exclude: Sequence[str] = ()) -> Any:
        c = st.constraints
        router = st.router if st.router is not None else self.router
        tools = {"require_tools": True} if st.needs_tools else {}
        return router.route(st.messages, tier=st.tier, min_quality=c.min_quality, max_cost=c.max_cost,
                            max_quality_gap=c.max_quality_gap, max_tokens=c.max_tokens, exclude=exclude, **tools)

    def first_route(self, st: RequestState) -> Any:
        cooling = self.health.cooling()
        if cooling:
            try:
                return self.route(st, sorted(cooling))
            except NoEligibleModelError:
                pass  # everything left is cooling: try them anyway rather than fail the request
        return self.route(st)

    def adapt(self, st: RequestState, model: str) -> tuple[dict[str, Any], list[str]]:
        cached = st.adapted.get(model)
        if cached is None:
            cached = st.adapted[model] = adapt_params(
                st.params, self.catalog[model], has_images=st.parsed.has_images,
                stream_usage=st.stream and self.retry.stream_usage)
        return cached

    # -- the request, as a generator of actions ------------------------------------------------
    def run(self, st: RequestState, decision: Any) -> Generator[Any, Any, tuple[str, Any]]:
        st.decision = decision
        model = decision.model if decision is not None else st.model
        if decision is not None and st.auto and self.usage is not None:
            # from the request parsed already (the store drops it unless it keeps prompts)
            st.classifier_text = (st.router or self.router).classifier_text(st.parsed)
        if decision is not None and st.auto and st.cascade is not None and not st.stream:
            done = yield from run_cascade(self, st, decision)
            if done is not None:
                return done
            if st.tried:
                st.failed.extend(m for m in st.tried if m not in st.failed)
            model = self.fallback(st)
            if model is None:
                raise self.exhausted(st)
        elif decision is not None and st.auto and st.explore:
            st.explored = self.explorer.draw(decision)
            model = st.explored.model
        while True:
            outcome = yield from self.attempts(st, model)
            if outcome is not None:
                break
            st.failed.append(model)
            model = yield from self.fallback(st)
            if model is None:
                left = self.time_left(st)
                raise self.deadline_passed(st) if left is not None and left <= 0 else self.exhausted(st)
        if not st.stream:
            model, outcome = yield from self.escalate(st, model, outcome)
        return model, outcome

    def attempts(self, st: RequestState, model: str) -> Generator[Any, Any, Any]:
        """Try ``model`` with retries; its response (or opened stream), or ``None`` to fall back."""
        st.tried.append(model)
        params, notes = self.adapt(st, model)
        retry = self.retry
        for attempt in range(1, retry.max_attempts + 1):
            left = self.time_left(st)
            if left is not None and left <= 0:
                raise self.deadline_passed(st)
            timeout = st.timeout if left is None or st.timeout is None else min(st.timeout, left)
            res: Result = yield Call(model, params, st.stream, timeout)
            entry: dict[str, Any] = {"model": model, "attempt": attempt, "latency_ms": round(res.latency_ms, 2)}
            if notes:
                entry["adapted"] = list(notes)
            if res.ok:
                self.health.success(model)
                entry.update(status="ok", reason="stream opened" if st.stream else "answered")
                st.chain.append(entry)
                if not st.stream:
                    pt, ct = tokens(st, res.value)
                    st.cost += self.catalog[model].cost(pt, ct)
                return res.value
            assert res.error is not None
            f = classify(res.error)
            if f.kind == "bug":
                raise res.error  # a programming error: not the provider's fault
            st.last = f
            entry.update(status="error", reason=f.reason)
            if f.status_code is not None:
                entry["status_code"] = f.status_code
            st.chain.append(entry)
            cooled = self.health.failure(model) if f.counts else False
            if f.fatal:
                raise self.error(st, model, f"{model} rejected the request: {f.reason}: {f.message}")
            # a cooldown ends the retries only when another model can take over: a request that
            # named its model (and has no fallback) uses all of its attempts
            if not f.retryable or attempt >= retry.max_attempts or (cooled and self.can_fall_back(st)):
                return None
            pause = retry.delay(attempt, f.retry_after, self.rng)
            left = self.time_left(st)
            if left is not None and pause >= left:
                raise self.deadline_passed(st)
            yield Sleep(pause)
        return None

    def time_left(self, st: RequestState) -> float | None:
        """Seconds left before the request's deadline (``None``: no deadline)."""
        return None if st.deadline_at is None else st.deadline_at - time.monotonic()

    def can_fall_back(self, st: RequestState) -> bool:
        r = self.retry
        return r.fallback and (st.decision is not None or r.fallback_explicit) and len(st.tried) <= r.max_fallbacks

    def fallback(self, st: RequestState) -> Generator[Any, Any, str | None]:
        if not self.can_fall_back(st):
            return None
        left = self.time_left(st)
        if left is not None and left <= 0:
            raise self.deadline_passed(st)
        exclude = set(st.failed) | set(st.tried) | self.health.cooling()
        d = yield Route(self, st, sorted(exclude))
        if isinstance(d, NoEligibleModelError):
            return None
        if isinstance(d, BaseException):
            raise d
        if st.decision is None:
            st.decision = d
        return d.model

    def escalate(self, st: RequestState, model: str, response: Any) -> Generator[Any, Any, tuple[str, Any]]:
        pol = self.escalation
        d = st.decision
        if pol is None or d is None or not st.auto or pol.max_escalations <= 0 or not st.escalate \
                or st.cascade is not None:
            return model, response
        for _ in range(pol.max_escalations):
            hit = pol.triggered(response_text(response), d.task)
            if hit is None:
                break
            q = d.predicted_quality.get(model, 0.0)
            pool = [m for m in d.candidates
                    if d.predicted_quality.get(m, 0.0) > q + pol.min_quality_gain
                    and m not in st.tried and not self.health.is_cooling(m)]
            if not pool:
                _note(st, model, f"check {hit} fired; no stronger candidate")
                break
            nxt = min(pool, key=lambda m: (d.estimated_costs.get(m, float("inf")), -d.predicted_quality[m], m))
            est = d.estimated_costs.get(nxt, 0.0)
            cap = st.max_cost
            if cap is not None and st.cost + est > cap + 1e-15:
                _note(st, model, f"check {hit} fired; {nxt} would exceed the cost cap "
                                 f"(${st.cost:.6f} spent + ${est:.6f} > ${cap:.6f})")
                break
            for e in reversed(st.chain):
                if e["model"] == model and e["status"] == "ok":
                    e.update(status="escalated", reason=f"check {hit} fired; escalated to {nxt}")
                    break
            try:
                new = yield from self.attempts(st, nxt)
            except UpstreamError:  # the stronger model refused the request: keep the answer we have
                new = None
            if new is None:
                for e in reversed(st.chain):  # the escalation failed: the earlier answer stands
                    if e["model"] == model and e["status"] == "escalated":
                        e.update(status="ok", reason=e["reason"] + " (which failed; this answer kept)")
                        break
                break
            st.escalated = True
            model, response = nxt, new
        return model, response

    # -- errors ----------------------------------------------------------------------------------
    def error(self, st: RequestState, model: str | None, message: str) -> UpstreamError:
        f = st.last
        return UpstreamError(message, status_code=f.status_code if f else None, model=model,
                             kind=f.kind if f else None, upstream_message=f.message if f else None,
                             request_id=st.request_id, chain=list(st.chain))

    def deadline_passed(self, st: RequestState) -> UpstreamError:
        """The request's deadline passed (the gateway answers 504)."""
        msg = f"the request's deadline of {st.deadline:g} s passed"
        if st.last is not None:
            msg += f" (last error: {st.last.reason}{': ' + st.last.message if st.last.message else ''})"
        return UpstreamError(msg, model=st.tried[-1] if st.tried else st.model, kind="deadline",
                             upstream_message=st.last.message if st.last else None, request_id=st.request_id,
                             chain=list(st.chain))

    def exhausted(self, st: RequestState) -> UpstreamError:
        per: dict[str, list[str]] = {}
        for e in st.chain:
            if e["status"] == "error":
                per.setdefault(e["model"], []).append(e["reason"])
        parts = [f"{m}: {', '.join(rs)}" for m, rs in per.items()]
        msg = "every model failed (" + "; ".join(parts) + ")"
        if st.last and st.last.message:
            msg += f"; last error: {st.last.message}"
        return self.error(st, st.tried[-1] if st.tried else None, msg)


def _note(st: RequestState, model: str, text: str) -> None:
    for e in reversed(st.chain):
        if e["model"] == model and e["status"] == "ok":
            e["note"] = text
            return

"""Routing metadata (``response.router``) and the usage log: one record per request, never per
attempt; logging never raises into the caller."""

from __future__ import annotations

import logging
import time
from typing import Any

from ...text.request import estimate_tokens
from .options import RequestState

__all__ = ["meta", "tokens", "response_text", "log_request", "log_failure", "log_rejected"]

log = logging.getLogger("router.serving.client")


def response_text(response: Any) -> str:
    """The answer's text (all choices), or "" when it has none."""
    choices = response.choices or ()
    return "\n".join((c.message.content or "") for c in choices if c.message is not None)


def tokens(st: RequestState, response: Any) -> tuple[int, int]:
    """(prompt, completion) tokens: the provider's usage, else estimates."""
    u = response.usage
    if u is not None and u.prompt_tokens is not None:
        return int(u.prompt_tokens or 0), int(u.completion_tokens or 0)
    return st.parsed.prompt_tokens, estimate_tokens(response_text(response))


def meta(st: RequestState, model: str | None, cost: float | None) -> dict[str, Any]:
    """The routing metadata of ``response.router`` / ``stream.router``."""
    d = st.decision
    return {
        "model": model,
        "requested_model": st.requested_model,
        "task": d.task if d is not None else None,
        "tier": d.tier if (d is not None and st.auto) else None,
        "predicted_quality": d.predicted_quality.get(model) if (d is not None and model) else None,
        "estimated_cost": d.estimated_costs.get(model) if (d is not None and model) else None,
        "cost_usd": cost,
        "chain": st.chain,
        "request_id": st.request_id,
        "rule": (d.rule if st.auto else "explicit") if d is not None else "explicit",
        "escalated": st.escalated,
        "latency_ms": round((time.perf_counter() - st.t0) * 1000.0, 2),
        **learning_meta(st),
    }


def learning_meta(st: RequestState) -> dict[str, Any]:
    """The learning loop's part of the metadata: the router version that decided, the model
    routed to first and its propensity, whether exploration drew it, and the cascade's steps
    (``None`` without a cascade)."""
    ex = st.explored
    routed = ex.model if ex is not None else (st.decision.model if (st.decision is not None and st.auto) else None)
    return {
        "router_version": st.router_version,
        "routed_model": routed,
        "propensity": (float(ex.propensity) if ex is not None else 1.0) if routed is not None else None,
        "explored": bool(ex.explored) if ex is not None else False,
        "cascade": list(st.steps) if st.cascade is not None and st.steps else None,
    }


def _learning_fields(st: RequestState) -> dict[str, Any]:
    """The log row's learning-loop columns (:func:`~router.serving.usage.record.decision_fields`)
    of a routed request; none for a named model."""
    from ..usage.record import decision_fields

    if st.decision is None or not st.auto:
        return {"answer": st.answer}
    out = decision_fields(st.decision, st.explored, router_version=st.router_version,
                          classifier_text=st.classifier_text)
    out["answer"] = st.answer
    return out


def log_request(usage: Any, st: RequestState, model: str | None, status: str, error: str | None, pt: int, ct: int,
                latency_ms: float | None = None) -> None:
    if usage is None:
        return
    try:
        from ..usage.store import UsageRecord, hash_prompt  # sqlalchemy: only once a request is logged

        d = st.decision
        text = st.parsed.text
        usage.log(UsageRecord(
            request_id=st.request_id, created_at=st.created_at,
            task=d.task if d is not None else None,
            model=model or st.requested_model, requested_model=st.requested_model,
            tier=d.tier if (d is not None and st.auto) else None,
            predicted_quality=d.predicted_quality.get(model) if (d is not None and model) else None,
            prompt_tokens=int(pt), completion_tokens=int(ct), cost_usd=float(st.cost),
            latency_ms=float(latency_ms if latency_ms is not None else (time.perf_counter() - st.t0) * 1000.0),
            status=status, error=error, chain=list(st.chain), escalated=st.escalated, stream=st.stream,
            prompt=text, prompt_hash=hash_prompt(text), client=st.client_tag, **_learning_fields(st),
        ))
    except Exception:  # logging must never fail a request
        log.warning("usage logging failed for %s", st.request_id, exc_info=True)


def log_failure(usage: Any, st: RequestState, exc: BaseException, status: str = "error") -> None:
    model = st.tried[-1] if st.tried else (st.model or st.requested_model)
    log_request(usage, st, model, status, f"{type(exc).__name__}: {exc}"[:2000], st.parsed.prompt_tokens, 0)


def log_rejected(usage: Any, rid: str, requested: Any, exc: BaseException, client_tag: str | None,
                 stream: bool) -> None:
    """The row of a request rejected before anything was sent (invalid, unknown model)."""
    if usage is None:
        return
    try:
        from ..usage.store import UsageRecord

        name = requested if isinstance(requested, str) and requested else "(none)"
        usage.log(UsageRecord(
            request_id=rid, created_at=time.time(), task=None, model=name[:255], requested_model=name[:255],
            tier=None, predicted_quality=None, prompt_tokens=0, completion_tokens=0, cost_usd=0.0,
            latency_ms=0.0, status="rejected", error=f"{type(exc).__name__}: {exc}"[:2000], stream=stream,
            client=client_tag,
        ))
    except Exception:
        log.warning("usage logging failed for %s", rid, exc_info=True)

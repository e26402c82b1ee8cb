"""What the usage log holds per request (:class:`UsageRecord`), and how feedback scores are named.

A record carries what the learning loop needs to learn from and evaluate a request off-policy:
the router version that decided, every candidate's predicted quality and cost, the policy's
target, the model it routed to first and that model's **propensity** (1.0 without exploration),
and, when the operator opts in, exactly the text the task classifier read and the answer.
:func:`decision_fields` builds those fields from a :class:`~router.types.RoutingDecision` (and
an exploration draw), so the client and gateway fill them the same way.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ...errors import InvalidRequestError

if TYPE_CHECKING:
    from ...learning.exploration import Explored
    from ...types import RoutingDecision

__all__ = ["UsageRecord", "hash_prompt", "decision_fields", "ORIGINS", "CLIENT_ORIGINS", "score_from",
           "client_feedback", "REQUEST_ORIGINS"]

#: Where a feedback row came from. ``human``: a person's rating; ``judge``: an automatic grader
#: (never claimable by a client); ``implicit``: evidence from behaviour (an escalation that fired
#: says the first model's answer was weak); ``import``: a bulk outcome file.
ORIGINS = ("human", "judge", "implicit", "import")
#: What a row of the requests table is: ``traffic`` (a request a client sent: the only rows
#: ``/v1/stats`` counts) or ``simulated`` (added by the learning loop's simulation).
REQUEST_ORIGINS = ("traffic", "simulated")
#: The origins a caller of ``POST /v1/feedback`` may claim.
CLIENT_ORIGINS = ("human", "implicit")


def hash_prompt(prompt: str) -> str:
    """sha256 hex digest of the prompt text (UTF-8): what the log keeps when prompts are private."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def score_from(*, score: Any = None, thumbs: Any = None, rating: Any = None, scale: int = 10) -> float:
    """One feedback score in [0, 1] from any of the accepted forms.

    ``score`` in [0, 1] as is; ``thumbs`` ``"up"`` -> 1.0, ``"down"`` -> 0.0; ``rating`` r on a
    1..``scale`` scale -> (r - 1) / (scale - 1) (a 1-10 rating of 8 is 0.777...).
    :class:`InvalidRequestError` names the bad value."""
    given = [k for k, v in (("score", score), ("thumbs", thumbs), ("rating", rating)) if v is not None]
    if len(given) != 1:
        raise InvalidRequestError("give exactly one of 'score' (0..1), 'thumbs' ('up' | 'down') or "
                                  f"'rating' (1..{scale}); got {given or 'none'}", param="score")
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score) \
                or not 0.0 <= score <= 1.0:
            raise InvalidRequestError(f"'score' must be a number in [0, 1], got {score!r}", param="score")
        return float(score)
    if thumbs is not None:
        if thumbs not in ("up", "down"):
            raise InvalidRequestError(f"'thumbs' must be 'up' or 'down', got {thumbs!r}", param="thumbs")
        return 1.0 if thumbs == "up" else 0.0
    if isinstance(rating, bool) or not isinstance(rating, (int, float)) or not 1 <= rating <= scale:
        raise InvalidRequestError(f"'rating' must be a number in [1, {scale}], got {rating!r}", param="rating")
    return (float(rating) - 1.0) / (scale - 1.0)


@dataclass(frozen=True, kw_only=True)
class UsageRecord:
    """One routed request as the log keeps it.

    ``model`` is the model that answered (or the last one tried); ``requested_model`` what the
    caller asked for (``"auto"``, ``"auto:budget"`` or a model name). ``chain`` lists the attempts
    in order, each ``{"model", "status", "reason", "latency_ms"}``. ``prompt`` is ``None`` when
    privacy hides it; ``prompt_hash`` is always the sha256 of the text (see :func:`hash_prompt`).

    Learning-loop fields (schema version 2; ``None`` / empty when unknown): ``router_version``
    (registered ``name/version`` or the folder's fingerprint), ``routed_model`` (the model routed
    to first, after any exploration draw), ``propensity`` (the probability the logging policy
    routed to ``routed_model``), ``explored`` (the uniform exploration draw fired),
    ``target_quality`` (the policy's target), ``candidates`` (``[{"model", "quality", "cost"}]``
    of every eligible model), ``classifier_text`` (the exact text the task classifier read; kept
    only with ``store_prompts``) and ``answer`` (kept only with ``store_responses``).

    ``origin`` (schema version 3): one of :data:`REQUEST_ORIGINS`; only ``traffic`` rows are
    counted by the statistics.
    """

    request_id: str
    created_at: float
    task: str | None
    model: str
    requested_model: str
    tier: str | None
    predicted_quality: float | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: float
    status: str
    error: str | None = None
    chain: list[dict[str, Any]] = field(default_factory=list)
    escalated: bool = False
    stream: bool = False
    prompt: str | None = None
    prompt_hash: str = ""
    client: str | None = None
    router_version: str | None = None
    routed_model: str | None = None
    propensity: float | None = None
    explored: bool | None = None
    target_quality: float | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    classifier_text: str | None = None
    answer: str | None = None
    origin: str = "traffic"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decision_fields(decision: "RoutingDecision", explored: "Explored | None" = None, *,
                    router_version: str | None = None, classifier_text: str | None = None) -> dict[str, Any]:
    """The learning-loop fields of a :class:`UsageRecord` for one routed request.

    ``decision``: the policy's decision; ``explored``: the exploration draw
    (:func:`router.learning.exploration.explore`), ``None`` when exploration is off (the policy's
    choice then has propensity 1). Returns keyword arguments for :class:`UsageRecord`:
    ``router_version, routed_model, propensity, explored, target_quality, candidates,
    classifier_text`` (``task``, ``tier`` and ``predicted_quality`` stay the caller's).
    """
    cands = [{"model": m, "quality": round(float(decision.predicted_quality[m]), 6),
              "cost": float(decision.estimated_costs[m])} for m in decision.candidates]
    if explored is None:
        routed, propensity, fired = decision.model, 1.0, False
    else:
        routed, propensity, fired = explored.model, float(explored.propensity), bool(explored.explored)
    return {"router_version": router_version, "routed_model": routed, "propensity": propensity,
            "explored": fired, "target_quality": decision.target_quality, "candidates": cands,
            "classifier_text": classifier_text}


def client_feedback(body: Any) -> dict[str, Any]:
    """Validate a ``POST /v1/feedback`` body from a client -> keyword arguments of
    :meth:`UsageStore.add_feedback <router.serving.usage.store.UsageStore.add_feedback>`
    (``request_id, score, comment, origin, model``).

    ``origin`` defaults to ``human`` and may be one of :data:`CLIENT_ORIGINS`: a client cannot
    claim ``judge`` (or ``import``). :class:`InvalidRequestError` names the bad field."""
    if not isinstance(body, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    rid = body.get("request_id")
    if not isinstance(rid, str) or not rid:
        raise InvalidRequestError("'request_id' is required (the x-router-request-id of the answer)", param="request_id")
    score = score_from(score=body.get("score"), thumbs=body.get("thumbs"), rating=body.get("rating"))
    origin = body.get("origin", "human")
    if origin not in CLIENT_ORIGINS:
        raise InvalidRequestError(f"'origin' must be one of {list(CLIENT_ORIGINS)}, got {origin!r}"
                                  + (" (judge grades come from `router judge`, not from clients)"
                                     if origin == "judge" else ""), param="origin")
    comment, model = body.get("comment"), body.get("model")
    for key, v in (("comment", comment), ("model", model)):
        if v is not None and not isinstance(v, str):
            raise InvalidRequestError(f"'{key}' must be a string", param=key)
    return {"request_id": rid, "score": score, "comment": comment, "origin": origin, "model": model}

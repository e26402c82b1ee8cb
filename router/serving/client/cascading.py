"""The learned cascade of one request, as part of the sans-I/O machine (``escalate`` in its dict
form, see :mod:`.learning`).

Per step :func:`router.cascade.cascade_step` names the model(s) to call from the router's
predicted quality and cost of the decision's eligible candidates; each is called (with the
client's retries) one after the other, the answers are scored with
:meth:`Router.score_answers <router.Router.score_answers>` (a scorer-less router scores with
the original checks), and the loop goes on until an answer is accepted, ``max_steps`` are taken
or nothing stronger fits the rest of ``max_cost``. Every step lands in ``state.steps`` (the
routing metadata's ``cascade``) and every call in the chain with its ``step`` and ``score``;
an answer an escalation replaced is marked ``escalated`` (the usage log stores that as implicit
evidence that it was weak), one not picked in its own step ``not_chosen``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from ...cascade import Attempt, CascadeConfig, cascade_step
from ...errors import UpstreamError
from ...learning.exploration import Explored
from .records import response_text

__all__ = ["Work", "run_cascade", "DEFAULT_CASCADE_TARGET"]

log = logging.getLogger("router.serving.client")

#: The cascade's quality target when neither the request nor its tier gives one.
DEFAULT_CASCADE_TARGET = 0.8


@dataclass
class Work:
    """An action of the machine: run ``fn(*args)`` (CPU work such as scoring answers; the async
    driver runs it in a thread) and send its result back."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = field(default_factory=tuple)


def _score(router: Any, messages: Any, answers: list[str], models: list[str],
           precall: list[float]) -> list[float] | None:
    """P(good) of each answer (each scored with the others as agreement evidence; ``precall``:
    the routing decision's predicted quality of each model, so the prompt is not embedded again
    at every step), or ``None`` when scoring fails (the cascade then stops with what it has)."""
    try:
        others = [[a for j, a in enumerate(answers) if j != i] for i in range(len(answers))]
        got = router.score_answers([messages] * len(answers), answers, models,
                                   others=others if len(answers) > 1 else None, precall=precall)
        return [float(x) for x in got]
    except Exception:
        log.warning("scoring the cascade's answers failed; keeping the best answer so far", exc_info=True)
        return None


def _mark(chain: list[dict[str, Any]], model: str, **update: Any) -> None:
    for e in reversed(chain):
        if e["model"] == model and e["status"] == "ok":
            e.update(update)
            return


def run_cascade(m: Any, st: Any, decision: Any) -> Generator[Any, Any, tuple[str, Any] | None]:
    """Run ``st``'s cascade over ``decision``'s candidates through machine ``m``; returns
    ``(model, answer)``, or ``None`` when no call succeeded (the caller falls back). A request
    the provider rejects (400) in the first step raises like any request."""
    req = st.cascade
    target = req.target if req.target is not None else (decision.target_quality or DEFAULT_CASCADE_TARGET)
    cfg = CascadeConfig.from_target(min(max(float(target), 0.0), 1.0), max_steps=req.max_steps, agree=req.agree)
    models = [x for x in decision.candidates if not m.health.is_cooling(x)] or list(decision.candidates)
    quality = [decision.predicted_quality[x] for x in models]
    cost = [decision.estimated_costs[x] for x in models]
    history: list[Attempt] = []
    answers: dict[str, Any] = {}
    router = st.router if st.router is not None else m.router
    while True:
        act = cascade_step(models, quality, cost, history, cfg, max_cost=st.max_cost)
        st.steps.append({"step": act.step, "action": act.kind, "models": list(act.models), "reason": act.reason})
        if act.kind != "call":
            break
        if st.explored is None:  # the cascade's first model: routed to deterministically
            st.explored = Explored(act.models[0], 1.0, False)
        texts, names = [], []
        for name in act.models:
            before = st.cost
            try:
                resp = yield from m.attempts(st, name)
            except UpstreamError:
                if not history and not answers:
                    raise  # the request itself is wrong: nothing to keep
                resp = None
            if resp is None:  # retries exhausted: it counts as tried, with no answer
                history.append(Attempt(name, st.cost - before, act.step, 0.0))
                continue
            answers[name] = resp
            texts.append(response_text(resp))
            names.append(name)
            history.append(Attempt(name, st.cost - before, act.step, None))
        precall = [decision.predicted_quality[n] for n in names]
        scores = (yield Work(_score, (router, st.messages, texts, names, precall))) if names else []
        if scores is None:
            st.steps[-1]["scores"] = None
            break
        by_model = dict(zip(names, scores))
        st.steps[-1]["scores"] = {k: round(v, 4) for k, v in by_model.items()}
        history = [Attempt(a.model, a.cost, a.step, by_model.get(a.model, a.score)) if a.score is None else a
                   for a in history]
        for name, s in by_model.items():
            _mark(st.chain, name, step=act.step, score=round(s, 4))
    if not answers:
        return None
    scored = [a for a in history if a.model in answers]
    final = act.models[0] if act.models and act.models[0] in answers else \
        max(scored, key=lambda a: (a.score if a.score is not None else -1.0, -a.cost)).model
    last_step = max(a.step for a in history)
    for a in history:
        if a.model in answers and a.model != final:
            if a.step < last_step:
                _mark(st.chain, a.model, status="escalated",
                      reason=f"score {a.score if a.score is not None else 0:.2f} < {cfg.accept:.2f}; escalated")
            else:
                _mark(st.chain, a.model, status="not_chosen", reason="answered; another answer was kept")
    st.escalated = last_step > 1
    return final, answers[final]

"""``Router``: wires the catalog, task classifier, quality and cost models and the policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .catalog.model_catalog import ModelCatalog
from .errors import ArtifactError, InvalidRequestError
from .persistence.artifact import RouterParts, load_router, save_router
from .persistence.resolve import RouterChoice, choose_router, fetch, pin
from .policy import Candidate, Constraints, PolicyConfig, decide, resolve_target
from .predictors.priors import CatalogCostModel, CostModel, PriorQualityModel, QualityModel
from .tasks.base import TaskClassifier
from .tasks.taxonomy import RegexTaskClassifier
from .text.fewshot import strip_few_shot
from .text.request import ParsedRequest, Prompt, parse_request
from .text.views import CONTEXT_MARK
from .types import QualityEstimate, RoutingDecision, TaskPrediction

__all__ = ["Router", "TaskClassifier", "ResolvedRouter", "load_configured"]


def _vision(tp: TaskPrediction) -> TaskPrediction:
    return TaskPrediction(
        task="vision",
        confidence=1.0,
        source="request",
        complexity=tp.complexity,
        complexity_score=tp.complexity_score,
    )


class Router:
    """Routes prompts to the cheapest catalog model predicted to answer them well.

    Build one with :meth:`default` (catalog priors + regex, no training) or :meth:`load`
    (a saved router folder). Every collaborator is injectable.
    """

    def __init__(
        self,
        catalog: ModelCatalog,
        *,
        classifier: TaskClassifier | None = None,
        quality_model: QualityModel | None = None,
        cost_model: CostModel | None = None,
        policy: PolicyConfig | None = None,
        context_turns: int = 0,
        answer_scorer: Any = None,
    ):
        self.catalog = catalog
        self.classifier = classifier if classifier is not None else RegexTaskClassifier()
        self.quality_model = quality_model if quality_model is not None else PriorQualityModel(catalog)
        self.cost_model = cost_model if cost_model is not None else CatalogCostModel(catalog)
        self.policy = policy if policy is not None else PolicyConfig()
        self.context_turns = context_turns
        self.answer_scorer = answer_scorer  # optional: router.predictors.answer_scorer.AnswerScorer

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def default(cls, catalog: ModelCatalog | str | Path | None = None, **kwargs: Any) -> "Router":
        """The cold-start router: catalog priors and the regex classifier, no training needed."""
        if not isinstance(catalog, ModelCatalog):
            catalog = ModelCatalog.load(catalog)
        return cls(catalog, **kwargs)

    @classmethod
    def load(cls, path_or_uri: str | Path) -> "Router":
        """Load a router saved with :meth:`save` (a folder) or a registry URI (``models:/``, ``runs:/``)."""
        parts = load_router(path_or_uri)
        return cls(parts.catalog, classifier=parts.classifier, quality_model=parts.quality_model,
                   cost_model=parts.cost_model, policy=parts.policy, context_turns=parts.context_turns,
                   answer_scorer=parts.answer_scorer)

    @classmethod
    def from_config(cls, router: str | Path | None = None, **kwargs: Any) -> "Router":
        """The router the project is configured to use: ``router`` > ``$ROUTER_MODEL`` > the
        ``router:`` of ``mlflow.yaml`` (default ``models:/llm-router@champion``) > cold start;
        see :func:`load_configured` for ``kwargs``."""
        return load_configured(None if router is None else str(router), **kwargs).router

    def save(self, path: str | Path) -> Path:
        """Write this router to a new folder ``path`` (atomically); returns the path."""
        return save_router(self.parts(), path)

    def parts(self) -> RouterParts:
        """The catalog, collaborators and settings this router is built from."""
        return RouterParts(self.catalog, classifier=self.classifier, quality_model=self.quality_model,
                           cost_model=self.cost_model, policy=self.policy, context_turns=self.context_turns,
                           answer_scorer=self.answer_scorer)

    @property
    def models(self) -> tuple[str, ...]:
        return self.catalog.names

    # -- inference -----------------------------------------------------------------------
    def _text_for_classifier(self, req: ParsedRequest) -> str:
        """The last user turn, followed by up to ``context_turns`` earlier turns (newest first,
        each cut to 300 characters) and the system prompt. The current turn comes first so
        it survives the embedder's truncation; the context lets "now make it faster" after a
        coding turn stay ``code``. :data:`~router.text.views.CONTEXT_MARK` separates the two.
        Few-shot examples before the question are dropped (:mod:`router.text.fewshot`); training
        embeds this same text."""
        text = strip_few_shot(req.text)
        if self.context_turns <= 0 or not req.context:
            return text
        system = [t for role, t in req.context if role in ("system", "developer") and t.strip()]
        turns = [t for role, t in req.context if role in ("user", "assistant") and t.strip()]
        picked = list(reversed(turns[-self.context_turns:])) + system[:1]
        if not picked:
            return text
        # the mark tells text views where the request's own text ends (embedders drop it)
        return text + CONTEXT_MARK + "\n\n" + "\n\n".join(t[:300] for t in picked)

    def classifier_text(self, prompt: Prompt | ParsedRequest) -> str:
        """Exactly the text the task classifier reads for ``prompt`` (the last user turn and the
        context it appends): what the usage log keeps with ``store_prompts``, so retraining
        embeds what serving saw. A request parsed already (:class:`ParsedRequest`) is not parsed
        again."""
        return self._text_for_classifier(prompt if isinstance(prompt, ParsedRequest) else parse_request(prompt))

    def _features_and_tasks(
        self, reqs: Sequence[ParsedRequest]
    ) -> tuple[np.ndarray | None, list[TaskPrediction]]:
        """Embed once: the learned classifier's feature matrix (n, d) is shared with the learned
        quality and cost models. ``None`` features with the regex classifier."""
        texts = [self._text_for_classifier(r) for r in reqs]
        if not texts:
            return None, []
        X = self.classifier.featurize(texts)
        preds = self.classifier.predict_features(X, texts)
        return X, [_vision(p) if r.has_images else p for p, r in zip(preds, reqs)]

    def classify(self, prompts: Sequence[Prompt] | Prompt) -> list[TaskPrediction]:
        """Task of each prompt (a string or an OpenAI message list). A single prompt is accepted."""
        reqs = [parse_request(p) for p in _as_batch(prompts)]
        return self._features_and_tasks(reqs)[1]

    def _estimate(
        self, reqs: Sequence[ParsedRequest], max_tokens: int | None = None
    ) -> QualityEstimate:
        X, tasks = self._features_and_tasks(reqs)
        texts = [r.text for r in reqs]
        models = self.models
        quality = np.asarray(self.quality_model.predict_quality(texts, tasks, models, features=X), float)
        quality = np.clip(quality, 0.0, 1.0)
        cost = np.asarray(self.cost_model.predict_cost(
            [r.prompt_tokens for r in reqs], tasks, models, max_tokens, features=X), float)
        return QualityEstimate(models=models, quality=quality, cost=cost, tasks=tuple(tasks))

    def predict(self, prompts: Sequence[Prompt] | Prompt) -> QualityEstimate:
        """Predicted quality and expected cost, arrays (n, m) with m = ``self.models``."""
        return self._estimate([parse_request(p) for p in _as_batch(prompts)])

    def check_constraints(
        self,
        *,
        tier: str | None = None,
        min_quality: float | None = None,
        max_cost: float | None = None,
        max_quality_gap: float | None = None,
        max_tokens: int | None = None,
    ) -> None:
        """Raise :class:`~router.errors.InvalidRequestError` naming the first invalid constraint
        (an unknown tier, a quality outside [0, 1], a negative cap, a non-positive max_tokens):
        the policy's own checks, without any model work. Callers that validate a request before
        routing it (the client, the gateway) use this rather than their own copy of the rules."""
        resolve_target(self.policy, Constraints(tier=tier, min_quality=min_quality, max_cost=max_cost,
                                                max_quality_gap=max_quality_gap, max_tokens=max_tokens))

    def score_answers(
        self,
        prompts: Sequence[Prompt],
        answers: Sequence[str],
        models: Sequence[str],
        *,
        others: Sequence[Sequence[str]] | None = None,
        precall: Sequence[float] | None = None,
    ) -> np.ndarray:
        """P(answer good) for n (prompt, answer, model) triples -> array (n,).

        With a trained answer scorer: its calibrated probability (``others``: other answers to
        the same prompt already in hand, as agreement evidence). Without one: the pre-call
        predicted quality of the model, 0 where the original escalation checks fire (a TODO or
        placeholder in an answer, hedging words). ``precall``: each model's pre-call predicted
        quality when the caller has it already (a routing decision's ``predicted_quality``), so
        the prompt is not embedded again."""
        from .predictors.answer_scorer import ANSWER_FEATURE_NAMES, answer_features

        reqs = [parse_request(p) for p in _as_batch(prompts, single_ok=False)]
        if not (len(reqs) == len(answers) == len(models)) or (others is not None and len(others) != len(reqs)):
            raise InvalidRequestError(f"score_answers needs one answer and one model per prompt; got {len(reqs)} "
                                      f"prompts, {len(answers)} answers, {len(models)} models")
        if any(not isinstance(a, str) for a in answers):
            raise InvalidRequestError("answers must be strings")
        names = [self.catalog.resolve(m) for m in models]
        if precall is None:
            est = self._estimate(reqs)
            cols = [self.models.index(m) for m in names]
            precall = est.quality[np.arange(len(reqs)), cols]
        elif len(precall) != len(reqs):
            raise InvalidRequestError(f"score_answers needs one precall quality per prompt; got {len(precall)}")
        precall = np.asarray(precall, dtype=float)
        texts = [r.text for r in reqs]
        if self.answer_scorer is not None:
            return self.answer_scorer.score(texts, list(answers), names, precall, others)
        F = answer_features(texts, list(answers), precall, others)
        checks = [ANSWER_FEATURE_NAMES.index(c) for c in ("placeholder", "hedging")]  # the original checks
        fired = (F[:, checks] > 0).any(1)
        return np.where(fired, 0.0, precall)

    def route(
        self,
        prompt: Prompt,
        *,
        tier: str | None = None,
        min_quality: float | None = None,
        max_cost: float | None = None,
        max_quality_gap: float | None = None,
        max_tokens: int | None = None,
        exclude: Sequence[str] = (),
        require_tools: bool = False,
    ) -> RoutingDecision:
        """Pick a model for one prompt or message list; see :mod:`router.policy` for the rules.
        ``require_tools``: the request carries tools (only models with the capability)."""
        return self.route_many(
            [prompt], tier=tier, min_quality=min_quality, max_cost=max_cost,
            max_quality_gap=max_quality_gap, max_tokens=max_tokens, exclude=exclude, require_tools=require_tools,
        )[0]

    def route_many(
        self,
        prompts: Sequence[Prompt],
        *,
        tier: str | None = None,
        min_quality: float | None = None,
        max_cost: float | None = None,
        max_quality_gap: float | None = None,
        max_tokens: int | None = None,
        exclude: Sequence[str] = (),
        require_tools: bool = False,
    ) -> list[RoutingDecision]:
        """Route a batch (embedding and prediction are batched)."""
        excluded = frozenset(self.catalog.resolve(m) for m in exclude)
        self.check_constraints(tier=tier, min_quality=min_quality, max_cost=max_cost,
                               max_quality_gap=max_quality_gap, max_tokens=max_tokens)
        reqs = [parse_request(p) for p in _as_batch(prompts, single_ok=False)]
        est = self._estimate(reqs, max_tokens)
        specs = [self.catalog[m] for m in est.models]
        out = []
        for i, req in enumerate(reqs):
            cands = [
                Candidate(
                    model=s.name, quality=float(est.quality[i, j]), cost=float(est.cost[i, j]),
                    context_window=s.context_window, max_output_tokens=s.max_output_tokens, vision=s.vision,
                    tools="tools" in s.capabilities,
                )
                for j, s in enumerate(specs)
            ]
            c = Constraints(
                tier=tier, min_quality=min_quality, max_cost=max_cost, max_quality_gap=max_quality_gap,
                require_vision=req.has_images or est.tasks[i].task == "vision", require_tools=require_tools,
                prompt_tokens=req.prompt_tokens, max_tokens=max_tokens, exclude=excluded,
            )
            out.append(decide(est.tasks[i], cands, c, self.policy))
        return out


def _as_batch(prompts: Any, single_ok: bool = True) -> list[Prompt]:
    """A list of prompts; a single string or single message list becomes a batch of one."""
    if isinstance(prompts, str):
        if single_ok:
            return [prompts]
        raise InvalidRequestError("route_many takes a list of prompts, got a single string")
    if isinstance(prompts, Sequence) and prompts and all(isinstance(m, dict) and "role" in m for m in prompts):
        if single_ok:
            return [prompts]  # one message list
        raise InvalidRequestError("route_many takes a list of prompts, got a single message list")
    if not isinstance(prompts, Sequence) or isinstance(prompts, (bytes, bytearray)):
        raise InvalidRequestError(f"prompts must be a list, got {type(prompts).__name__}")
    return list(prompts)


# -- the configured router (one precedence for the CLI, the client and from_config) -----------
@dataclass(frozen=True)
class ResolvedRouter:
    """A loaded router and how it was found. ``pinned``: the spec actually loaded (an alias
    replaced by its version); ``fallback``: why the cold-start router is used instead of the
    configured one (``None`` when the configured router loaded); ``folder``: the local folder
    it was loaded from (``None`` for the cold-start router)."""

    router: Router
    choice: RouterChoice
    pinned: str | None
    folder: Path | None = None
    fallback: str | None = None

    @property
    def cold_start(self) -> bool:
        return self.pinned is None

    def describe(self) -> str:
        """One line for logs: which router, which version, from where."""
        if self.fallback:
            return (f"cold-start router (regex + catalog priors): the configured router "
                    f"{self.choice.describe()} cannot load: {self.fallback}")
        if self.pinned is None:
            return f"cold-start router (regex + catalog priors), from {self.choice.origin}"
        alias = f" ({self.choice.spec})" if self.choice.spec != self.pinned else ""
        return f"router {self.pinned}{alias} from {self.choice.origin}"


def load_configured(flag: str | None = None, *, catalog: ModelCatalog | str | Path | None = None,
                    allow_cold_start: bool = True, mlflow_config: str | Path | None = None,
                    alias_max_age_s: float = 0.0, environ: Mapping[str, str] | None = None) -> ResolvedRouter:
    """Load the router the precedence picks. When it cannot load: an explicit ``--router``
    raises; otherwise the cold-start router (on ``catalog``) is returned with ``fallback`` set,
    or, with ``allow_cold_start=False``, the error is raised naming the configured router.
    ``alias_max_age_s``: see :func:`pin` (0: always ask the store)."""
    choice = choose_router(flag, mlflow_config=mlflow_config, environ=environ)
    if choice.spec is None:
        return ResolvedRouter(Router.default(catalog), choice, None)
    try:
        pinned = pin(choice.spec, choice.tracking_uri, max_age_s=alias_max_age_s, environ=environ)
        folder = fetch(pinned, choice.tracking_uri, environ=environ)
        router = Router.load(folder)
    except ArtifactError as exc:
        if choice.explicit or not allow_cold_start:
            raise ArtifactError(f"cannot load the configured router {choice.describe()}: {exc}") from None
        return ResolvedRouter(Router.default(catalog), choice, None, fallback=str(exc))
    return ResolvedRouter(router, choice, pinned, folder)

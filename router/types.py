"""Frozen value types that flow through the router: predictions, estimates, decisions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["TaskPrediction", "QualityEstimate", "RoutingDecision"]

Complexity = Literal["easy", "medium", "hard"]


@dataclass(frozen=True)
class TaskPrediction:
    """The task type of one prompt.

    ``source`` says which classifier answered: ``"regex"`` (cold start or low-confidence
    fallback) or ``"learned"``. ``complexity_score`` is in [0, 1]; ``complexity`` buckets it.
    ``probabilities`` maps task -> probability when the classifier gives a distribution.
    """

    task: str
    confidence: float
    source: str
    complexity: Complexity = "medium"
    complexity_score: float = 0.5
    probabilities: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QualityEstimate:
    """Per-model predictions for a batch of prompts.

    ``models``: column order, length m. ``quality``: array (n, m) of P(good answer) in [0, 1].
    ``cost``: array (n, m) of expected USD per call. ``tasks``: the n task predictions used.
    """

    models: tuple[str, ...]
    quality: np.ndarray
    cost: np.ndarray
    tasks: tuple[TaskPrediction, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.tasks) if self.tasks else self.quality.shape[0]
        expected = (n, len(self.models))
        if self.quality.shape != expected or self.cost.shape != expected:
            raise ValueError(
                f"quality {self.quality.shape} and cost {self.cost.shape} must both be {expected}"
            )

    def column(self, model: str) -> int:
        return self.models.index(model)


@dataclass(frozen=True)
class RoutingDecision:
    """The outcome of routing one request.

    ``rule`` is ``"cheapest_meeting_target"`` when a model met the quality target within the cost
    cap, ``"best_within_cap"`` when none did and the best predicted quality that fits was taken,
    ``"cheapest_within_gap"`` in gap mode, ``"best_value"`` when a trained policy's price curve
    turned the target into a price (:mod:`router.policy`), or ``"explicit"`` when the caller
    named the model. ``candidates`` are the models that passed the
    capability, context and exclusion filters, cheapest first; ``excluded`` maps the others to why.
    """

    model: str
    task: str
    task_confidence: float
    task_source: str
    complexity: str
    rule: str
    reason: str
    target_quality: float | None
    tier: str | None
    estimated_cost: float
    predicted_quality: dict[str, float]
    estimated_costs: dict[str, float]
    candidates: tuple[str, ...]
    excluded: dict[str, str] = field(default_factory=dict)
    prompt_tokens: int = 0

    @property
    def quality(self) -> float:
        """Predicted quality of the chosen model."""
        return self.predicted_quality[self.model]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["candidates"] = list(self.candidates)
        return d

"""Per-model quality and cost predictors.

Cold start: :class:`PriorQualityModel` reads the catalog's per-task priors, and
:class:`CatalogCostModel` prices the prompt tokens plus an expected output length per task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from ..catalog.model_catalog import ModelCatalog
from ..tasks.taxonomy import TASK_TYPES
from ..types import TaskPrediction

__all__ = [
    "QualityModel",
    "CostModel",
    "PriorQualityModel",
    "CatalogCostModel",
    "DEFAULT_OUTPUT_TOKENS",
    "weighted_median",
]

#: Expected completion length (tokens) by task; ``None`` = proportional to the prompt.
DEFAULT_OUTPUT_TOKENS: Mapping[str, int | None] = {
    "code": 600,
    "math": 450,
    "reasoning": 500,
    "classification": 20,
    "extraction": 150,
    "summarization": 200,
    "rewriting": None,
    "translation": None,
    "creative": 700,
    "qa": 300,
    "general": 300,
    "vision": 250,
}


class QualityModel(Protocol):
    def predict_quality(
        self, texts: Sequence[str], tasks: Sequence[TaskPrediction], models: Sequence[str],
        features: np.ndarray | None = None,
    ) -> np.ndarray:
        """n texts with their task predictions (and, for learned models, the classifier's
        feature matrix (n, d)) -> array (n, len(models)) of P(good) in [0, 1]."""
        ...


class CostModel(Protocol):
    def predict_cost(
        self,
        prompt_tokens: Sequence[int],
        tasks: Sequence[TaskPrediction],
        models: Sequence[str],
        max_tokens: int | None = None,
        features: np.ndarray | None = None,
    ) -> np.ndarray:
        """n requests -> array (n, len(models)) of expected USD per call."""
        ...


def _prior_matrix(catalog: ModelCatalog, models: Sequence[str]) -> np.ndarray:
    """Array (len(TASK_TYPES), len(models)) of catalog priors."""
    return np.array([[catalog[m].prior(t) for m in models] for t in TASK_TYPES], dtype=float)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Column-wise weighted median: ``values`` (k, m), ``weights`` (k,) summing to 1 -> (m,):
    per column, the highest value v such that values >= v hold at least half the weight."""
    order = np.argsort(-values, axis=0, kind="stable")
    v = np.take_along_axis(values, order, 0)
    cum = np.cumsum(weights[order], axis=0)
    first = (cum >= 0.5 - 1e-12).argmax(0)
    return v[first, np.arange(values.shape[1])]


class PriorQualityModel:
    """Quality = the catalog prior of the predicted task; with a task posterior (a learned
    classifier's probabilities), the quality a model reaches on at least half of the posterior
    mass: the posterior-weighted **median** of its per-task priors.

    The rule for uncertain task predictions: a confident prediction (one task >= 0.5) reads that
    task's priors exactly, as the original tables do; an uncertain one credits each model with
    what it achieves on the tasks the prompt most likely is. A posterior *mean* would pull every
    model whose priors peak on different tasks under a tier's target ("What's a good name for a
    golden retriever puppy?" at 0.43 creative: every model just under 0.88, so the quality tier
    fell back to the dearest all-rounder); the median does not. ``tests/unit/test_uncertain_tasks.py``.
    """

    kind = "prior"

    def __init__(self, catalog: ModelCatalog):
        self.catalog = catalog
        self._priors: dict[tuple[str, ...], np.ndarray] = {}  # models -> prior matrix (the catalog is frozen)

    def _prior_matrix(self, models: Sequence[str]) -> np.ndarray:
        key = tuple(models)
        priors = self._priors.get(key)
        if priors is None:
            priors = self._priors[key] = _prior_matrix(self.catalog, key)
        return priors

    def predict_quality(
        self, texts: Sequence[str], tasks: Sequence[TaskPrediction], models: Sequence[str],
        features: np.ndarray | None = None,
    ) -> np.ndarray:
        priors = self._prior_matrix(models)
        index = {t: i for i, t in enumerate(TASK_TYPES)}
        out = np.empty((len(tasks), len(models)))
        for i, tp in enumerate(tasks):
            if tp.probabilities and tp.task != "vision":
                w = np.zeros(len(TASK_TYPES))
                for t, p in tp.probabilities.items():
                    w[index[t]] = p
                out[i] = weighted_median(priors, w / max(w.sum(), 1e-12))
            else:
                out[i] = priors[index[tp.task]]
        return out

    def to_config(self) -> dict[str, Any]:
        return {"type": self.kind}


class CatalogCostModel:
    """Expected cost = prompt tokens x input price + expected output tokens x output price.

    Expected output tokens come from ``output_tokens`` by task (or the prompt length for
    rewriting/translation), capped by the request's ``max_tokens`` and the model's limit.
    """

    kind = "catalog"

    def __init__(self, catalog: ModelCatalog, output_tokens: Mapping[str, int | None] | None = None):
        self.catalog = catalog
        self.output_tokens = dict(DEFAULT_OUTPUT_TOKENS if output_tokens is None else output_tokens)

    def expected_output_tokens(self, task: str, prompt_tokens: int) -> int:
        n = self.output_tokens.get(task, 300)
        return int(prompt_tokens * 1.1) + 10 if n is None else int(n)

    def predict_cost(
        self,
        prompt_tokens: Sequence[int],
        tasks: Sequence[TaskPrediction],
        models: Sequence[str],
        max_tokens: int | None = None,
        features: np.ndarray | None = None,
    ) -> np.ndarray:
        specs = [self.catalog[m] for m in models]
        p_in = np.array([s.pricing.input_per_1m for s in specs]) / 1e6
        p_out = np.array([s.pricing.output_per_1m for s in specs]) / 1e6
        cap = np.array([s.max_output_tokens for s in specs], dtype=float)
        if max_tokens is not None:
            cap = np.minimum(cap, max_tokens)
        out = np.empty((len(tasks), len(models)))
        for i, (n_in, tp) in enumerate(zip(prompt_tokens, tasks)):
            n_out = np.minimum(self.expected_output_tokens(tp.task, n_in), cap)
            out[i] = n_in * p_in + n_out * p_out
        return out

    def to_config(self) -> dict[str, Any]:
        return {"type": self.kind, "output_tokens": self.output_tokens}

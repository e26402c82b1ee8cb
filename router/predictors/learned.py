"""Learned per-model quality and cost predictors.

Quality: for each model with outcome data, a fitted scikit-learn classifier gives
P(good | z) where z = [embedding, prompt features, task posterior, complexity] (see
:func:`quality_features`). The prediction shrinks to the catalog's (model, task) prior with
weight k / (n + k), n = the model's training outcomes, so a model with little data, or a new
catalog model with none, gets a sensible prior.

Calibration (optional, fitted by ``router train`` on out-of-fold predictions of the training
prompts): per model, Platt scaling of the shrunk prediction, ``sigmoid(a * logit(q) + b)``. A
head whose per-prompt deviations the held-out folds do not bear out (a < 1) is pulled toward its
mean, so a target means what it says and the best-on-average model is left only where the
evidence, after that shrinkage, says another is better.

Cost: for each model with observed costs, a regressor predicts log(cost) from
[log prompt tokens, task posterior, prompt features]; other models use catalog prices.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..persistence.checks import confined, count, field, mapping, number, output_tokens
from ..persistence.pickles import dump_head, load_head
from ..catalog.model_catalog import ModelCatalog
from ..errors import ArtifactError
from ..text.features import FEATURE_NAMES
from . import linear
from .priors import CatalogCostModel, PriorQualityModel
from ..tasks.taxonomy import TEXT_TASK_TYPES
from ..types import TaskPrediction

__all__ = [
    "task_posterior",
    "whole_text_features",
    "quality_features",
    "cost_features",
    "LearnedQualityModel",
    "LearnedCostModel",
    "load_quality_model",
    "load_cost_model",
]


def task_posterior(tasks: Sequence[TaskPrediction]) -> np.ndarray:
    """Array (n, len(TEXT_TASK_TYPES)): the classifier's probabilities, or one-hot of the task."""
    out = np.zeros((len(tasks), len(TEXT_TASK_TYPES)), dtype=np.float32)
    index = {t: i for i, t in enumerate(TEXT_TASK_TYPES)}
    for i, tp in enumerate(tasks):
        if tp.probabilities:
            for t, p in tp.probabilities.items():
                if t in index:
                    out[i, index[t]] = p
        elif tp.task in index:
            out[i, index[tp.task]] = 1.0
    return out


def whole_text_features(X: np.ndarray, views: int = 0) -> np.ndarray:
    """Drop the view embeddings from a classifier feature matrix.

    ``X``: array (n, e * (1 + views) + f) laid out [whole text, view 1, ..., hand features]
    (:class:`router.embedders.ViewsEmbedder`) -> array (n, e + f). The views help the task
    classifier; the quality heads did slightly better without them (BENCHMARKS.md)."""
    if views <= 0:
        return X
    f = len(FEATURE_NAMES)
    width = X.shape[1] - f
    if width % (1 + views):
        raise ArtifactError(f"feature matrix of width {X.shape[1]} does not hold {views} text views")
    e = width // (1 + views)
    return np.hstack([X[:, :e], X[:, width:]])


def quality_features(X: np.ndarray, tasks: Sequence[TaskPrediction], views: int = 0) -> np.ndarray:
    """[whole-text features of X (n, d) (see :func:`whole_text_features`), task posterior (n, 11),
    complexity score (n, 1)] -> array (n, d' + 12)."""
    cx = np.array([[tp.complexity_score] for tp in tasks], dtype=np.float32)
    return np.hstack([whole_text_features(X, views), task_posterior(tasks), cx]).astype(np.float32)


def cost_features(prompt_tokens: Sequence[int], X: np.ndarray, tasks: Sequence[TaskPrediction]) -> np.ndarray:
    """[log1p(prompt tokens), task posterior, prompt features] -> array (n, 1 + 11 + f)."""
    tok = np.log1p(np.asarray(prompt_tokens, dtype=np.float32))[:, None]
    return np.hstack([tok, task_posterior(tasks), X[:, -len(FEATURE_NAMES):]]).astype(np.float32)


class LearnedQualityModel:
    """Per-model heads with shrinkage to the catalog prior (see module docstring).

    ``heads``: model -> fitted classifier with ``predict_proba`` (class 1 = good answer).
    ``counts``: model -> number of training outcomes. ``shrinkage``: the k above.
    ``text_views``: how many view embeddings the classifier's features carry (dropped here).
    ``calibration``: model -> (a, b) of the Platt scaling above (absent: none).
    """

    kind = "learned"
    needs_features = True

    def __init__(self, catalog: ModelCatalog, heads: Mapping[str, Any], counts: Mapping[str, int],
                 shrinkage: float = 50.0, metadata: dict[str, Any] | None = None, text_views: int = 0,
                 calibration: Mapping[str, Sequence[float]] | None = None):
        self.catalog = catalog
        self.heads = dict(heads)
        self.counts = dict(counts)
        self.shrinkage = shrinkage
        self.metadata = dict(metadata or {})
        self.text_views = int(text_views)
        self.calibration = {m: (float(a), float(b)) for m, (a, b) in (calibration or {}).items()}
        self._prior = PriorQualityModel(catalog)

    def predict_quality(self, texts: Sequence[str], tasks: Sequence[TaskPrediction], models: Sequence[str],
                        features: np.ndarray | None = None) -> np.ndarray:
        prior = self._prior.predict_quality(texts, tasks, models)
        if features is None or not self.heads:
            return prior
        Z = quality_features(features, tasks, self.text_views)
        out = prior.copy()
        for j, m in enumerate(models):
            head = self.heads.get(m)
            if head is None:
                continue
            classes = list(head.classes_)
            p = linear.predict_proba(head, Z)[:, classes.index(1)] if 1 in classes else np.zeros(len(Z))
            n = self.counts.get(m, 0)
            w = n / (n + self.shrinkage)
            out[:, j] = w * p + (1 - w) * prior[:, j]
        return self.calibrate(out, models)

    def calibrate(self, quality: np.ndarray, models: Sequence[str]) -> np.ndarray:
        """Apply the per-model Platt scaling to (n, len(models)) predictions (columns of models
        without one unchanged)."""
        out = np.array(quality, dtype=float, copy=True)
        for j, m in enumerate(models):
            if m in self.calibration:
                a, b = self.calibration[m]
                z = np.log(np.clip(out[:, j], 1e-4, 1 - 1e-4) / (1 - np.clip(out[:, j], 1e-4, 1 - 1e-4)))
                out[:, j] = 1.0 / (1.0 + np.exp(-(a * z + b)))
        return out

    def save_state(self, folder: Path) -> dict[str, Any]:
        folder.mkdir(parents=True, exist_ok=True)
        files = {m: dump_head(h, folder / f"quality_{i}.joblib") for i, (m, h) in enumerate(self.heads.items())}
        cfg = {"type": self.kind, "files": files, "counts": self.counts, "shrinkage": self.shrinkage,
               "text_views": self.text_views, "metadata": self.metadata}
        if self.calibration:
            cfg["calibration"] = {m: list(ab) for m, ab in self.calibration.items()}
        (folder / "config.json").write_text(json.dumps(cfg, indent=2))
        return cfg


class LearnedCostModel:
    """Per-model log-cost regressors where costs were observed; catalog prices elsewhere."""

    kind = "learned"
    needs_features = True

    def __init__(self, catalog: ModelCatalog, heads: Mapping[str, Any], metadata: dict[str, Any] | None = None,
                 output_tokens: Mapping[str, int | None] | None = None):
        self.catalog = catalog
        self.heads = dict(heads)
        self.metadata = dict(metadata or {})
        self._fallback = CatalogCostModel(catalog, output_tokens)

    def predict_cost(self, prompt_tokens: Sequence[int], tasks: Sequence[TaskPrediction], models: Sequence[str],
                     max_tokens: int | None = None, features: np.ndarray | None = None) -> np.ndarray:
        base = self._fallback.predict_cost(prompt_tokens, tasks, models, max_tokens)
        if features is None or not self.heads:
            return base
        C = cost_features(prompt_tokens, features, tasks)
        out = base.copy()
        for j, m in enumerate(models):
            head = self.heads.get(m)
            if head is None:
                continue
            pred = np.expm1(linear.predict(head, C)) / 1e6  # trained on log1p(micro-USD)
            if max_tokens is not None:
                spec = self.catalog[m]
                cap = np.asarray(prompt_tokens) * spec.pricing.input_per_1m / 1e6 + \
                    max_tokens * spec.pricing.output_per_1m / 1e6
                pred = np.minimum(pred, cap)
            out[:, j] = np.maximum(pred, 0.0)
        return out

    def save_state(self, folder: Path) -> dict[str, Any]:
        folder.mkdir(parents=True, exist_ok=True)
        files = {m: dump_head(h, folder / f"cost_{i}.joblib") for i, (m, h) in enumerate(self.heads.items())}
        cfg = {"type": self.kind, "files": files, "metadata": self.metadata,
               "output_tokens": self._fallback.output_tokens}
        (folder / "config.json").write_text(json.dumps(cfg, indent=2))
        return cfg


def _heads(cfg: Mapping[str, Any], catalog: ModelCatalog, folder: Path, where: str, expect: str) -> dict[str, Any]:
    """The per-model heads ``cfg["files"]`` (model -> file name inside ``folder``)."""
    files = mapping(cfg, "files", where, {})
    unknown = [m for m in files if m not in catalog]
    if unknown:
        raise ArtifactError(f"{where}: files: heads for models not in the embedded catalog: {unknown}")
    return {m: load_head(confined(folder, f, f"{where}: files[{m!r}]"), expect, f"{where}: files[{m!r}]")
            for m, f in files.items()}


def load_quality_model(cfg: Mapping[str, Any], folder: Path, catalog: ModelCatalog) -> LearnedQualityModel:
    """Inverse of :meth:`LearnedQualityModel.save_state`; :class:`ArtifactError` naming a bad field."""
    where = f"{folder.parent / 'router.json'}: {folder.name}"
    counts = mapping(cfg, "counts", where, {})
    for m, n in counts.items():
        count(n, f"{where}: counts[{m!r}]")
    shrinkage = number(cfg, "shrinkage", where, 50.0, positive=True)
    views = count(field(cfg, "text_views", int, where, 0), f"{where}: 'text_views'")
    metadata = mapping(cfg, "metadata", where, {})
    heads = _heads(cfg, catalog, folder, where, "classifier")
    calibration = mapping(cfg, "calibration", where, {})
    for m, ab in calibration.items():
        if (not isinstance(ab, (list, tuple)) or len(ab) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in ab)):
            raise ArtifactError(f"{where}: calibration[{m!r}] must be a pair of finite numbers, got {ab!r}")
    return LearnedQualityModel(catalog, heads, counts, shrinkage, metadata, views, calibration)


def load_cost_model(cfg: Mapping[str, Any], folder: Path, catalog: ModelCatalog) -> LearnedCostModel:
    """Inverse of :meth:`LearnedCostModel.save_state`; :class:`ArtifactError` naming a bad field."""
    where = f"{folder.parent / 'router.json'}: {folder.name}"
    tokens = output_tokens(cfg, where)
    metadata = mapping(cfg, "metadata", where, {})
    return LearnedCostModel(catalog, _heads(cfg, catalog, folder, where, "regressor"), metadata, tokens)

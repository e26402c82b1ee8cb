"""Fit the per-model quality and cost heads from long-form outcomes.

Inputs are per *prompt*: ``Z`` (array (p, d), quality features of each unique prompt, see
``router.learned_quality.quality_features``) and ``C`` (array (p, k), cost features); the
outcome frame's ``prompt_index`` column points into them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ...catalog.model_catalog import ModelCatalog
from ...predictors.learned import LearnedCostModel, LearnedQualityModel
from ...progress import ProgressLike, as_progress

from .threads import map_on_threads

__all__ = ["fit_quality_heads", "fit_cost_heads", "build_quality_model", "build_cost_model", "QUALITY_HEADS"]

QUALITY_HEADS = ("logreg", "mlp")


def _quality_head(kind: str, C: float):
    if kind == "logreg":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=C, max_iter=2000)
    if kind == "mlp":
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(hidden_layer_sizes=(128,), alpha=1e-2, max_iter=300, early_stopping=True, random_state=0)
    raise ValueError(f"unknown quality head {kind!r}; choose from {QUALITY_HEADS}")


def source_weights(sources: pd.Series, power: float) -> np.ndarray:
    """Per-row weight (source size)^-power, mean 1: 14,000 MMLU rows must not drown 300 MBPP ones."""
    counts = sources.map(sources.value_counts()).to_numpy(float)
    w = counts ** (-power)
    return w * (len(w) / w.sum())


def fit_quality_heads(outcomes: pd.DataFrame, Z: np.ndarray, models: Sequence[str], *, head: str = "logreg",
                      C: float = 0.5, source_power: float = 0.5, n_jobs: int | None = None,
                      progress: ProgressLike = None) -> tuple[dict[str, Any], dict[str, int]]:
    """One binary head per model with outcomes. Fractional scores s become two weighted rows
    (label 1 with weight s, label 0 with weight 1 - s); rows are weighted to balance sources
    (``source_power``, see :func:`source_weights`) and, when the frame has a ``weight`` column,
    by it (the learning loop weighs feedback origins so). Heads fit on ``n_jobs`` threads (default:
    one per core) with one BLAS thread each. Returns (heads, counts)."""

    def fit_one(sub: pd.DataFrame):
        idx = sub.prompt_index.to_numpy()
        s = sub.score.to_numpy(float)
        sw = source_weights(sub.source, source_power) if "source" in sub else np.ones(len(s))
        if "weight" in sub:  # per-row weights (the learning loop's feedback origins)
            sw = sw * sub.weight.to_numpy(float)
        X = np.vstack([Z[idx], Z[idx]])
        y = np.concatenate([np.ones(len(s), int), np.zeros(len(s), int)])
        w = np.concatenate([s * sw, (1 - s) * sw])
        keep = w > 0
        if len(set(y[keep])) < 2:  # always right or always wrong: a constant head
            from sklearn.dummy import DummyClassifier

            return DummyClassifier(strategy="prior").fit(X[keep], y[keep], sample_weight=w[keep])
        est = _quality_head(head, C)
        try:
            return est.fit(X[keep], y[keep], sample_weight=w[keep])
        except TypeError:
            return est.fit(X[keep], y[keep])

    subs = {m: outcomes[outcomes.model == m] for m in models}
    subs = {m: sub for m, sub in subs.items() if not sub.empty}
    with as_progress(progress).steps(f"quality heads ({head})", len(subs)) as advance:
        def fit_and_report(sub: pd.DataFrame):
            est = fit_one(sub)
            advance(1)
            return est

        heads = dict(zip(subs, map_on_threads(fit_and_report, subs.values(), n_jobs)))
    counts = {m: int(len(sub)) for m, sub in subs.items()}
    return heads, counts


def fit_cost_heads(outcomes: pd.DataFrame, C: np.ndarray, models: Sequence[str], min_rows: int = 20) -> dict[str, Any]:
    """One ridge regressor of log1p(micro-USD) per model with >= ``min_rows`` observed costs."""
    from sklearn.linear_model import Ridge

    heads = {}
    for m in models:
        sub = outcomes[(outcomes.model == m) & outcomes.cost.notna()]
        if len(sub) < min_rows:
            continue
        y = np.log1p(sub.cost.to_numpy(float) * 1e6)
        heads[m] = Ridge(alpha=1.0).fit(C[sub.prompt_index.to_numpy()], y)
    return heads


def build_quality_model(catalog: ModelCatalog, outcomes: pd.DataFrame, Z: np.ndarray, *, head: str = "logreg",
                        C: float = 0.5, shrinkage: float = 50.0, source_power: float = 0.5,
                        text_views: int = 0, progress: ProgressLike = None) -> LearnedQualityModel:
    """``Z`` from ``quality_features(X, tasks, text_views)``; ``text_views`` is stored so that
    prediction drops the same columns."""
    heads, counts = fit_quality_heads(outcomes, Z, catalog.names, head=head, C=C, source_power=source_power,
                                      progress=progress)
    return LearnedQualityModel(catalog, heads, counts, shrinkage,
                               metadata={"head": head, "C": C, "source_power": source_power,
                                         "outcomes": int(len(outcomes))}, text_views=text_views)


def build_cost_model(catalog: ModelCatalog, outcomes: pd.DataFrame, Cfeat: np.ndarray) -> LearnedCostModel:
    heads = fit_cost_heads(outcomes, Cfeat, catalog.names)
    return LearnedCostModel(catalog, heads, metadata={"models_with_cost_data": sorted(heads)})

"""Out-of-fold predictions of the quality model and its per-model Platt calibration.

``router train`` refits the quality model on k folds of the training prompts (folds by a hash of
the prompt id), predicts each fold from the others, and fits per model ``sigmoid(a * logit(q) +
b)`` to the true scores of those out-of-fold predictions. The calibrated out-of-fold predictions
also fit the policy's price curve (so a target is met on average on prompts the heads did not
see) and feed the answer scorer (the pre-call prediction it will see when serving).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ...catalog.model_catalog import ModelCatalog
from ...types import TaskPrediction
from ..evaluate.routing import id_bucket

__all__ = ["out_of_fold_quality", "fit_platt", "CALIBRATION_FOLDS"]

CALIBRATION_FOLDS = 5


def out_of_fold_quality(build: Callable[[pd.DataFrame], object], train: pd.DataFrame, prompt_ids: Sequence[str],
                        texts: Sequence[str], tasks: Sequence[TaskPrediction], X: np.ndarray,
                        models: Sequence[str], folds: int = CALIBRATION_FOLDS) -> np.ndarray:
    """``build(rows)`` fits a quality model on outcome rows (``prompt_index`` into the prompts);
    ``prompt_ids``, ``texts``, ``tasks``, ``X``: per prompt -> array (p, len(models)), each
    prompt predicted by the model fitted without its fold."""
    fold = np.array([id_bucket(str(p), folds) for p in prompt_ids])
    out = np.full((len(prompt_ids), len(models)), np.nan)
    row_fold = fold[train.prompt_index.to_numpy(int)]
    for k in range(folds):
        te = np.flatnonzero(fold == k)
        if not len(te):
            continue
        qm = build(train[row_fold != k])
        out[te] = qm.predict_quality([texts[i] for i in te], [tasks[i] for i in te], models, features=X[te])
    return out


def fit_platt(pred: np.ndarray, score: np.ndarray, weight: np.ndarray | None = None) -> tuple[float, float]:
    """Platt scaling of predictions ``pred`` (n,) against scores in [0, 1] (n,) -> (a, b) with
    P(good) = sigmoid(a * logit(pred) + b); fractional scores count as weighted 1 and 0 rows."""
    from sklearn.linear_model import LogisticRegression

    p = np.clip(np.asarray(pred, float), 1e-4, 1 - 1e-4)
    s = np.asarray(score, float)
    w = np.ones_like(s) if weight is None else np.asarray(weight, float)
    z = np.log(p / (1 - p))[:, None]
    X, y = np.vstack([z, z]), np.concatenate([np.ones(len(s), int), np.zeros(len(s), int)])
    sw = np.concatenate([s * w, (1 - s) * w])
    keep = sw > 0
    if len(set(y[keep])) < 2 or np.ptp(z) == 0:
        return 1.0, 0.0
    lr = LogisticRegression(C=1e4, max_iter=1000).fit(X[keep], y[keep], sample_weight=sw[keep])
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])

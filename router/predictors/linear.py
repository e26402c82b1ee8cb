"""Predictions of fitted linear scikit-learn heads without scikit-learn's per-call input checks.

A routing decision calls a dozen small heads (task, complexity, a quality and a cost head per
model) on one row each; scikit-learn's validation of every call (dtype and finiteness checks,
dataframe-library sniffing) cost ~5 ms a decision on a RouterBench router, more than the
arithmetic. For the exact types :class:`~sklearn.linear_model.LogisticRegression`,
:class:`~sklearn.linear_model.Ridge` and :class:`~sklearn.linear_model.LinearRegression`, these
functions compute the same numbers from the public fitted attributes (``coef_``, ``intercept_``,
``classes_``) on a 2-D float array of the fitted width; anything else (another estimator, a
subclass, a sparse or badly shaped input) goes to the estimator's own method, which validates.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["predict_proba", "predict"]


def _is(est: Any, name: str) -> bool:
    """``est`` is exactly scikit-learn's ``linear_model.<name>`` (loaded, since ``est`` exists)."""
    mod = sys.modules.get("sklearn.linear_model")
    return mod is not None and type(est) is getattr(mod, name, None)


def _plain(X: Any, est: Any) -> bool:
    return (isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind == "f"
            and X.shape[1] == getattr(est, "n_features_in_", -1) and bool(np.isfinite(X).all()))


def predict_proba(est: Any, X: np.ndarray) -> np.ndarray:
    """``est.predict_proba(X)``: array (n, n_classes)."""
    if _is(est, "LogisticRegression") and _plain(X, est):
        z = X @ est.coef_.T + est.intercept_
        if len(est.classes_) <= 2:
            p = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.column_stack([1.0 - p, p])
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    return est.predict_proba(X)


def predict(est: Any, X: np.ndarray) -> np.ndarray:
    """``est.predict(X)`` for a single-target regressor: array (n,)."""
    if (_is(est, "Ridge") or _is(est, "LinearRegression")) and _plain(X, est) and np.ndim(est.coef_) == 1:
        return X @ est.coef_ + est.intercept_
    return est.predict(X)

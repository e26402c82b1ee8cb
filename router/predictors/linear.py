"""Predictions of fitted linear scikit-learn heads without scikit-learn's per-call input checks.

A routing decision calls a dozen small heads (task, complexity, a quality and a cost head per
model) on one row each; scikit-learn's validation of every call (dtype and finiteness checks,
dataframe-library sniffing) cost ~5 ms a decision on a RouterBench router, more than the
arithmetic. For the exact types :class:`~sklearn.linear_model.LogisticRegression`,
:class:`~sklearn.linear_model.Ridge` and :class:`~sklearn.linear_model.LinearRegression`, these
functions compute the same numbers from the public fitted attributes (``coef_``, ``intercept_``,
``classes_``) on a 2-D float array of the fitted width; anything else (another estimator, a
subclass, a sparse or badly shaped input) goes to the estimator's own method, which validates.

:class:`LinearHead` is how a router folder stores those heads: arrays in an ``.npz``, read
without unpickling and without importing scikit-learn.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["predict_proba", "predict", "LinearHead", "softmax", "tempered"]


def _is(est: Any, name: str) -> bool:
    """``est`` is exactly scikit-learn's ``linear_model.<name>`` (loaded, since ``est`` exists)."""
    mod = sys.modules.get("sklearn.linear_model")
    return mod is not None and type(est) is getattr(mod, name, None)


def _plain(X: Any, est: Any) -> bool:
    return (isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind == "f"
            and X.shape[1] == getattr(est, "n_features_in_", -1) and bool(np.isfinite(X).all()))


def _logistic(X: np.ndarray, coef: np.ndarray, intercept: np.ndarray, n_classes: int) -> np.ndarray:
    """Class probabilities of a (multinomial) logistic model, as scikit-learn computes them:
    the sigmoid of the one decision column when binary, else the softmax."""
    z = X @ coef.T + intercept
    if n_classes <= 2:
        p = 1.0 / (1.0 + np.exp(-z[:, 0]))
        return np.column_stack([1.0 - p, p])
    return softmax(z)


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits (n, k) -> probabilities (n, k)."""
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def tempered(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities (n, k) with their logits divided by ``temperature``: softmax(log p / T)."""
    return softmax(np.log(np.clip(proba, 1e-12, 1.0)) / temperature)


def predict_proba(est: Any, X: np.ndarray) -> np.ndarray:
    """``est.predict_proba(X)``: array (n, n_classes)."""
    if _is(est, "LogisticRegression") and _plain(X, est):
        return _logistic(X, est.coef_, est.intercept_, len(est.classes_))
    return est.predict_proba(X)


def predict(est: Any, X: np.ndarray) -> np.ndarray:
    """``est.predict(X)`` for a single-target regressor: array (n,)."""
    if (_is(est, "Ridge") or _is(est, "LinearRegression")) and _plain(X, est) and np.ndim(est.coef_) == 1:
        return X @ est.coef_ + est.intercept_
    return est.predict(X)


class LinearHead:
    """A fitted linear head held as arrays: what a router folder stores for scikit-learn's
    ``LogisticRegression`` (``kind="classifier"``), ``Ridge`` and ``LinearRegression``
    (``kind="regressor"``) instead of a pickle, so loading one runs no code and imports no
    scikit-learn. Same predictions as the estimator it was made from (:func:`from_estimator`).

    ``coef_``: (k, d) for a classifier (k = 1 when binary), (d,) for a regressor;
    ``intercept_``: (k,) or a scalar; ``classes_``: (n_classes,), classifiers only."""

    def __init__(self, kind: str, coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray | None = None):
        if kind not in ("classifier", "regressor"):
            raise ValueError(f"kind must be classifier or regressor, got {kind!r}")
        coef = np.asarray(coef, dtype=np.float64)
        intercept = np.asarray(intercept, dtype=np.float64)
        if kind == "classifier":
            if classes is None or coef.ndim != 2 or len(classes) < 2:
                raise ValueError("a classifier needs coef (k, d) and at least two classes")
            k = 1 if len(classes) == 2 else len(classes)
            if coef.shape[0] != k or intercept.shape != (k,):
                raise ValueError(f"{len(classes)} classes need coef ({k}, d) and intercept ({k},); "
                                 f"got {coef.shape} and {intercept.shape}")
            self.classes_ = np.asarray(classes)
        elif coef.ndim != 1 or intercept.ndim != 0:
            raise ValueError(f"a regressor needs coef (d,) and a scalar intercept; got {coef.shape}, {intercept.shape}")
        if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
            raise ValueError("coefficients must be finite")
        self.kind = kind
        self.coef_, self.intercept_ = coef, intercept
        self.n_features_in_ = int(coef.shape[-1])

    @classmethod
    def from_estimator(cls, est: Any) -> "LinearHead | None":
        """The head of a fitted ``LogisticRegression`` / ``Ridge`` / ``LinearRegression`` (exact
        types, one target), or ``est`` itself when it is one already; ``None`` for anything else."""
        if isinstance(est, LinearHead):
            return est
        if _is(est, "LogisticRegression") and hasattr(est, "coef_"):
            classes = np.asarray(est.classes_)
            if classes.dtype == object:
                if not all(isinstance(c, str) for c in classes):
                    return None
                classes = classes.astype(str)
            return cls("classifier", est.coef_, est.intercept_, classes)
        if (_is(est, "Ridge") or _is(est, "LinearRegression")) and np.ndim(getattr(est, "coef_", None)) == 1:
            return cls("regressor", est.coef_, np.asarray(est.intercept_, dtype=np.float64))
        return None

    def _check(self, X: Any) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"expected a 2-D array (n, {self.n_features_in_}), got shape {X.shape}")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but the head is expecting {self.n_features_in_} features as input")
        if X.dtype.kind not in "fiub":
            raise ValueError(f"X must be numeric, got dtype {X.dtype}")
        if not np.isfinite(X).all():
            raise ValueError("Input X contains NaN or infinity")
        return X

    def predict_proba(self, X: Any) -> np.ndarray:
        """(n, d) -> (n, n_classes), columns in ``classes_`` order."""
        if self.kind != "classifier":
            raise AttributeError("a regressor head has no predict_proba")
        return _logistic(self._check(X), self.coef_, self.intercept_, len(self.classes_))

    def predict(self, X: Any) -> np.ndarray:
        """Regressor: (n, d) -> (n,); classifier: the most probable class of each row."""
        if self.kind == "classifier":
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        return self._check(X) @ self.coef_ + self.intercept_

    def save(self, path: Path) -> None:
        """Write an ``.npz`` (no pickled objects)."""
        arrays = {"kind": np.array(self.kind), "coef": self.coef_, "intercept": self.intercept_}
        if self.kind == "classifier":
            arrays["classes"] = self.classes_
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: Path) -> "LinearHead":
        """Read what :meth:`save` wrote; ``ValueError`` when the file is not such a head."""
        with np.load(path, allow_pickle=False) as z:
            names = set(z.files)
            if not {"kind", "coef", "intercept"} <= names:
                raise ValueError(f"needs arrays kind, coef and intercept, has {sorted(names)}")
            kind = str(z["kind"])
            return cls(kind, z["coef"], z["intercept"], z["classes"] if "classes" in names else None)

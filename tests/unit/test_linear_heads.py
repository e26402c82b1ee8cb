"""router.predictors.linear: the same numbers as scikit-learn's own predict_proba / predict for
the exact linear types, and scikit-learn's own methods (with their validation) for anything else."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

from router.predictors import linear


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 12))
    y3 = rng.integers(0, 3, 300)
    return X, y3


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_logistic_regression_probabilities_match(data, dtype, n_classes):
    X, y3 = data
    y = y3 % n_classes
    clf = LogisticRegression(C=0.5, max_iter=500).fit(X, y)
    Xq = X[:40].astype(dtype)
    np.testing.assert_allclose(linear.predict_proba(clf, Xq), clf.predict_proba(Xq), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("cls", [Ridge, LinearRegression])
def test_regressors_match(data, cls):
    X, y3 = data
    reg = cls().fit(X, y3 + X[:, 0])
    np.testing.assert_allclose(linear.predict(reg, X[:40]), reg.predict(X[:40]), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(linear.predict(reg, X[:40].astype(np.float32)),
                               reg.predict(X[:40].astype(np.float32)), rtol=1e-5, atol=1e-6)


def test_other_estimators_and_subclasses_use_their_own_methods(data):
    X, y3 = data

    class Tweaked(LogisticRegression):
        def predict_proba(self, X):
            return np.full((len(X), 2), 0.5)

    odd = Tweaked().fit(X, y3 % 2)
    assert (linear.predict_proba(odd, X[:5]) == 0.5).all()
    gbt = HistGradientBoostingClassifier(max_iter=5).fit(X, y3)
    np.testing.assert_array_equal(linear.predict_proba(gbt, X[:5]), gbt.predict_proba(X[:5]))


def test_bad_inputs_get_scikit_learns_errors(data):
    X, y3 = data
    clf = LogisticRegression(max_iter=500).fit(X, y3 % 2)
    with pytest.raises(ValueError, match="features"):
        linear.predict_proba(clf, X[:5, :6])  # wrong width
    bad = X[:5].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        linear.predict_proba(clf, bad)
    reg = Ridge().fit(X, y3)
    with pytest.raises(ValueError):
        linear.predict(reg, X[0])  # 1-D

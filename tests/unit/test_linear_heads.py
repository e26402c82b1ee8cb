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


@pytest.mark.parametrize("labels", [np.array([0, 1]), np.array(["code", "math", "qa"]), np.array([False, True])])
def test_linear_head_round_trip_predicts_like_the_estimator(data, tmp_path, labels):
    X, y3 = data
    y = labels[y3 % len(labels)]
    clf = LogisticRegression(max_iter=500).fit(X, y)
    head = linear.LinearHead.from_estimator(clf)
    head.save(tmp_path / "h.npz")
    again = linear.LinearHead.load(tmp_path / "h.npz")
    np.testing.assert_allclose(again.predict_proba(X[:30]), clf.predict_proba(X[:30]), rtol=1e-9, atol=1e-12)
    assert list(again.classes_) == list(clf.classes_) and again.n_features_in_ == 12
    np.testing.assert_array_equal(again.predict(X[:30]), clf.predict(X[:30]))
    assert linear.LinearHead.from_estimator(again) is again


@pytest.mark.parametrize("cls", [Ridge, LinearRegression])
def test_linear_regressor_round_trip(data, tmp_path, cls):
    X, y3 = data
    reg = cls().fit(X, y3 * 0.5)
    linear.LinearHead.from_estimator(reg).save(tmp_path / "r.npz")
    again = linear.LinearHead.load(tmp_path / "r.npz")
    np.testing.assert_allclose(again.predict(X[:30]), reg.predict(X[:30]), rtol=1e-9, atol=1e-12)
    assert again.kind == "regressor"
    with pytest.raises(AttributeError):
        again.predict_proba(X[:3])


def test_only_single_target_linear_estimators_become_arrays(data):
    X, y3 = data
    assert linear.LinearHead.from_estimator(HistGradientBoostingClassifier(max_iter=3).fit(X, y3)) is None
    assert linear.LinearHead.from_estimator(Ridge().fit(X, np.column_stack([y3, y3]))) is None  # two targets
    assert linear.LinearHead.from_estimator(LogisticRegression()) is None  # not fitted


def test_linear_head_refuses_bad_arrays_and_inputs(tmp_path):
    with pytest.raises(ValueError, match="classes"):
        linear.LinearHead("classifier", np.ones((2, 3)), np.zeros(2), np.array([0, 1]))  # binary needs 1 row
    with pytest.raises(ValueError, match="scalar intercept"):
        linear.LinearHead("regressor", np.ones(3), np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        linear.LinearHead("regressor", np.array([1.0, np.inf]), np.array(0.0))
    head = linear.LinearHead("regressor", np.ones(3), np.array(0.5))
    with pytest.raises(ValueError, match="3 features"):
        head.predict(np.ones((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        head.predict(np.array([[1.0, np.nan, 0.0]]))
    with open(tmp_path / "obj.npz", "wb") as f:
        np.savez(f, kind=np.array("regressor"), coef=np.array([object()], dtype=object), intercept=np.array(0.0))
    with pytest.raises(ValueError):  # object arrays would need unpickling: refused
        linear.LinearHead.load(tmp_path / "obj.npz")


def test_a_router_with_linear_heads_loads_and_routes_without_scikit_learn(tmp_path):
    import subprocess
    import sys

    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel

    from router import ModelCatalog, Router
    from router.embedders.static import StaticEmbedder, write_static
    from router.training.data.datasets import LabelledPrompt, LabelledSet
    from router.training.fit.tasks import fit_task_classifier

    words = ["[UNK]", "write", "python", "code", "number", "tell", "me", "a", "story", "to", "sort"]
    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    table = np.random.default_rng(0).normal(size=(len(words), 8))
    emb = StaticEmbedder(write_static(tmp_path / "static", table, tok.to_str(), {"source": "test"}))
    ds = LabelledSet([LabelledPrompt(f"write python code number {i}", "code", "s", difficulty="easy") for i in range(8)] +
                     [LabelledPrompt(f"tell me a story number {i}", "creative", "s", difficulty="hard") for i in range(8)])
    clf = fit_task_classifier(ds, emb, threshold=0.0)
    path = Router(ModelCatalog.load(), classifier=clf).save(tmp_path / "r")
    code = ("import sys; from router import Router; r = Router.load(sys.argv[1]); "
            "d = r.route('write python code to sort'); assert d.task == 'code', d.task; "
            "print(sorted(m for m in ('sklearn', 'joblib', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr

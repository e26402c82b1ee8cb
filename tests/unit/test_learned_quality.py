"""Learned quality and cost heads on a synthetic two-model world (hashing embedder)."""

import numpy as np
import pandas as pd
import pytest

from router import ModelCatalog, Router
from router.tasks.classifier import featurize
from router.embedders import HashingEmbedder
from router.errors import ArtifactError
from router.text.features import FEATURE_NAMES
from router.predictors.learned import (
    LearnedCostModel,
    LearnedQualityModel,
    cost_features,
    quality_features,
    whole_text_features,
)
from router.text.request import estimate_tokens
from router.embedders import ViewsEmbedder
from router.training.data.datasets import LabelledPrompt, LabelledSet
from router.training.fit.quality import build_cost_model, build_quality_model
from router.training.fit.tasks import fit_task_classifier

CATALOG = {
    "defaults": {"provider": {"base_url": "http://127.0.0.1:1/v1", "api_key_env": "KEY"}},
    "models": {
        "cheap": {"pricing": {"input_per_1m": 0.1, "output_per_1m": 0.1}, "context_window": 8000,
                  "max_output_tokens": 1000, "quality_priors": {"default": 0.6}},
        "dear": {"pricing": {"input_per_1m": 10, "output_per_1m": 30}, "context_window": 8000,
                 "max_output_tokens": 1000, "quality_priors": {"default": 0.9}},
        "fresh": {"pricing": {"input_per_1m": 1, "output_per_1m": 1}, "context_window": 8000,
                  "max_output_tokens": 1000, "quality_priors": {"default": 0.42}},
    },
}
EASY = [f"say hello to my friend number {i}" for i in range(40)]
HARD = [f"prove the theorem about integrals and series number {i} rigorously" for i in range(40)]


@pytest.fixture(scope="module")
def world():
    catalog = ModelCatalog.from_dict(CATALOG)
    ds = LabelledSet([LabelledPrompt(p, "general", "s") for p in EASY[:10]] +
                     [LabelledPrompt(p, "math", "s") for p in HARD[:10]])
    clf = fit_task_classifier(ds, HashingEmbedder(256), threshold=0.0)
    prompts = EASY + HARD
    rows = []
    for i, p in enumerate(prompts):
        hard = i >= len(EASY)
        rows.append((f"p{i}", p, "cheap", 0.0 if hard else 1.0, 0.00001))
        rows.append((f"p{i}", p, "dear", 1.0, 0.003))
    df = pd.DataFrame(rows, columns=["prompt_id", "prompt", "model", "score", "cost"])
    df["prompt_index"] = [int(pid[1:]) for pid in df.prompt_id]
    X = featurize(clf.embedder, prompts)
    tasks = clf.predict_features(X, prompts)
    qm = build_quality_model(catalog, df, quality_features(X, tasks), C=5.0, shrinkage=5)
    cm = build_cost_model(catalog, df, cost_features([estimate_tokens(p) for p in prompts], X, tasks))
    return catalog, clf, qm, cm


def test_quality_learns_which_model_is_good_where(world):
    catalog, clf, qm, cm = world
    r = Router(catalog, classifier=clf, quality_model=qm, cost_model=cm)
    est = r.predict(["say hello to my friend number 99", "prove the theorem about integrals and series number 99 rigorously"])
    c, d = est.column("cheap"), est.column("dear")
    assert est.quality[0, c] > 0.7 and est.quality[1, c] < 0.4
    assert est.quality[:, d].min() > 0.8
    # a model without outcomes keeps its catalog prior
    assert est.quality[:, est.column("fresh")] == pytest.approx([0.42, 0.42])
    decisions = r.route_many(["say hello to my friend number 7", "prove the theorem about integrals and series number 7 rigorously"],
                             min_quality=0.7)
    assert [d.model for d in decisions] == ["cheap", "dear"]


def test_shrinkage_pulls_thin_models_to_the_prior(world):
    catalog, clf, qm, _ = world
    heavy = LearnedQualityModel(catalog, qm.heads, {"cheap": 80, "dear": 80}, shrinkage=1e9)
    X = featurize(clf.embedder, HARD[:1])
    tasks = clf.predict_features(X, HARD[:1])
    q = heavy.predict_quality(HARD[:1], tasks, ["cheap", "dear"], features=X)
    assert q[0] == pytest.approx([0.6, 0.9], abs=1e-6)


def test_cost_model_learns_observed_costs_and_respects_max_tokens(world):
    catalog, clf, qm, cm = world
    assert set(cm.heads) == {"cheap", "dear"}
    X = featurize(clf.embedder, EASY[:2])
    tasks = clf.predict_features(X, EASY[:2])
    cost = cm.predict_cost([10, 10], tasks, ["cheap", "dear", "fresh"], features=X)
    assert cost[:, 1] == pytest.approx([0.003, 0.003], rel=0.2)
    assert cost[:, 0] == pytest.approx([0.00001, 0.00001], rel=0.3)
    capped = cm.predict_cost([10, 10], tasks, ["dear"], max_tokens=1, features=X)
    assert (capped[:, 0] <= (10 * 10 + 1 * 30) / 1e6 + 1e-12).all()
    # without features it falls back to catalog prices
    assert isinstance(cm, LearnedCostModel)
    np.testing.assert_allclose(cm.predict_cost([10], tasks[:1], ["fresh"]),
                               cm._fallback.predict_cost([10], tasks[:1], ["fresh"]))


def test_learned_router_round_trip(world, tmp_path):
    catalog, clf, qm, cm = world
    r = Router(catalog, classifier=clf, quality_model=qm, cost_model=cm)
    again = Router.load(r.save(tmp_path / "r"))
    prompts = [EASY[3], HARD[3]]
    np.testing.assert_allclose(again.predict(prompts).quality, r.predict(prompts).quality, rtol=1e-6)
    np.testing.assert_allclose(again.predict(prompts).cost, r.predict(prompts).cost, rtol=1e-6)


def test_whole_text_features_drop_the_view_blocks():
    f = len(FEATURE_NAMES)
    X = np.hstack([np.full((2, 4), 1.0), np.full((2, 4), 2.0), np.full((2, 4), 3.0), np.full((2, f), 9.0)])
    W = whole_text_features(X, views=2)
    assert W.shape == (2, 4 + f) and (W[:, :4] == 1).all() and (W[:, 4:] == 9).all()
    assert whole_text_features(X, 0) is X
    with pytest.raises(ArtifactError, match="does not hold 4 text views"):
        whole_text_features(X, 4)


def test_quality_heads_on_views_features_read_the_whole_text_and_round_trip(world, tmp_path):
    catalog, _, _, _ = world
    ds = LabelledSet([LabelledPrompt(p, "general", "s") for p in EASY[:10]] +
                     [LabelledPrompt(p, "math", "s") for p in HARD[:10]])
    clf = fit_task_classifier(ds, ViewsEmbedder(HashingEmbedder(64)), threshold=0.0)
    prompts = EASY + HARD
    rows = [(f"p{i}", p, "cheap", 0.0 if i >= len(EASY) else 1.0, 0.00001) for i, p in enumerate(prompts)]
    df = pd.DataFrame(rows, columns=["prompt_id", "prompt", "model", "score", "cost"])
    df["prompt_index"] = range(len(prompts))
    X = featurize(clf.embedder, prompts)
    assert X.shape[1] == 3 * 64 + len(FEATURE_NAMES)
    tasks = clf.predict_features(X, prompts)
    Z = quality_features(X, tasks, views=2)
    assert Z.shape[1] == 64 + len(FEATURE_NAMES) + 12
    qm = build_quality_model(catalog, df, Z, C=5.0, shrinkage=5, text_views=2)
    r = Router(catalog, classifier=clf, quality_model=qm)
    again = Router.load(r.save(tmp_path / "r"))
    assert again.quality_model.text_views == 2
    probe = ["say hello to my friend. Number 5", "prove the theorem about integrals. Rigorously please"]
    q = again.predict(probe).quality[:, again.predict(probe).column("cheap")]
    assert q[0] > q[1]
    np.testing.assert_allclose(again.predict(probe).quality, r.predict(probe).quality, rtol=1e-6)


def test_quality_heads_fit_the_same_on_threads():
    from router.training.fit.quality import fit_quality_heads

    rng = np.random.default_rng(0)
    Z = rng.normal(size=(40, 6))
    rows = [(f"p{i}", m, float(Z[i, 0] > (0 if m == "a" else 0.5)), i, "s") for i in range(40) for m in ("a", "b", "c")]
    df = pd.DataFrame(rows, columns=["prompt_id", "model", "score", "prompt_index", "source"])
    one, n1 = fit_quality_heads(df, Z, ["a", "b", "c", "absent"], C=1.0, n_jobs=1)
    two, n2 = fit_quality_heads(df, Z, ["a", "b", "c", "absent"], C=1.0, n_jobs=2)
    assert list(one) == list(two) == ["a", "b", "c"] and n1 == n2 == {"a": 40, "b": 40, "c": 40}
    for m in one:
        np.testing.assert_allclose(one[m].predict_proba(Z), two[m].predict_proba(Z))

import json

import numpy as np
import pytest

import router
from router import (
    ArtifactError,
    InvalidRequestError,
    NoEligibleModelError,
    QualityEstimate,
    Router,
    RouterError,
    RoutingDecision,
    TaskPrediction,
    UnknownModelError,
)

IMAGE_MSG = [
    {"role": "user", "content": [
        {"type": "text", "text": "What breed is this dog?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]}
]


@pytest.fixture(scope="module")
def r():
    return Router.default()


def test_classify_strings_and_messages(r):
    preds = r.classify(["Write a Python function to merge sort an array",
                        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]])
    assert [p.task for p in preds] == ["code", "general"]
    assert isinstance(preds[0], TaskPrediction)
    # a single prompt or a single message list is a batch of one
    assert r.classify("hi")[0].task == "general"
    assert len(r.classify([{"role": "user", "content": "hi"}])) == 1


def test_predict_shapes_and_columns(r):
    est = r.predict(["Write a Python function to merge sort an array", "hi", "Translate this to French"])
    assert isinstance(est, QualityEstimate)
    assert est.models == r.models
    assert est.quality.shape == est.cost.shape == (3, len(r.models))
    assert ((est.quality >= 0) & (est.quality <= 1)).all()
    assert (est.cost > 0).all()
    o, f = est.column("gpt-4o"), est.column("glm-4-flash")
    assert (est.cost[:, o] > est.cost[:, f] * 50).all()


def test_route_returns_frozen_decision(r):
    d = r.route("Classify this tweet as positive or negative")
    assert isinstance(d, RoutingDecision)
    assert d.model == "glm-4-flash" and d.task == "classification" and d.task_source == "regex"
    assert d.estimated_cost == pytest.approx(d.estimated_costs["glm-4-flash"])
    assert set(d.predicted_quality) == set(r.models)
    json.dumps(d.to_dict())


def test_image_parts_force_a_vision_model(r):
    d = r.route(IMAGE_MSG, tier="budget")
    assert d.model == "glm-4v" and d.task == "vision" and d.task_source == "request"
    assert d.prompt_tokens > 765


def test_constraints_flow_through(r):
    p = "Write a Python function to merge sort an array"
    assert r.route(p, min_quality=0.5).model == "glm-4-flash"
    capped = r.route(p, tier="quality", max_cost=0.0001)
    assert capped.rule == "best_within_cap" and capped.estimated_cost <= 0.0001
    with pytest.raises(NoEligibleModelError):
        r.route(p, max_cost=0.0)
    assert r.route(p, exclude=["deepseek-v4-pro"]).model != "deepseek-v4-pro"
    with pytest.raises(UnknownModelError):
        r.route(p, exclude=["gpt-7"])
    with pytest.raises(InvalidRequestError, match="unknown tier"):
        r.route(p, tier="platinum")
    # max_tokens lowers the expected output and so the cost
    assert r.route(p, max_tokens=10).estimated_cost < r.route(p).estimated_cost


def test_context_window_overflow_is_no_eligible_model(r):
    with pytest.raises(NoEligibleModelError, match="context window"):
        r.route("word " * 600_000)


@pytest.mark.parametrize(
    "bad",
    ["", "   ", [], [{"role": "wizard", "content": "x"}], [{"role": "assistant", "content": "x"}],
     [{"role": "user", "content": 5}], [{"role": "user", "content": [{"type": "video"}]}], 42, b"bytes"],
)
def test_malformed_requests(r, bad):
    with pytest.raises(InvalidRequestError):
        r.route(bad)


def test_route_many_rejects_a_single_string(r):
    with pytest.raises(InvalidRequestError):
        r.route_many("hello")
    assert len(r.route_many(["a", "b"])) == 2


def test_save_load_round_trip(r, tmp_path):
    prompts = ["Write a Python function to merge sort an array", "hi", "Translate this to French"]
    path = r.save(tmp_path / "cold")
    config = json.loads((path / "router.json").read_text())
    assert config["format_version"] == 1 and "scikit-learn" in config["created_with"]
    again = Router.load(path)
    assert again.models == r.models
    assert [d.model for d in again.route_many(prompts)] == [d.model for d in r.route_many(prompts)]
    np.testing.assert_allclose(again.predict(prompts).cost, r.predict(prompts).cost)
    # saving again over a router folder replaces it
    r.save(path)
    assert Router.load(path).models == r.models


def test_save_refuses_to_clobber_a_foreign_folder(r, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    with pytest.raises(ArtifactError, match="not a router folder"):
        r.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"


def _edit(path, fn):
    cfg = json.loads((path / "router.json").read_text())
    fn(cfg)
    (path / "router.json").write_text(json.dumps(cfg))


def test_corrupt_and_incompatible_artifacts(r, tmp_path):
    with pytest.raises(ArtifactError, match="no router folder"):
        Router.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="router.json is missing"):
        Router.load(tmp_path / "empty")
    p = r.save(tmp_path / "r")
    (p / "router.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="corrupt"):
        Router.load(p)
    p = r.save(tmp_path / "r2")
    _edit(p, lambda c: c.update(format_version=99))
    with pytest.raises(ArtifactError, match="newer than this library"):
        Router.load(p)
    p = r.save(tmp_path / "r3")
    _edit(p, lambda c: c["classifier"].update(type="oracle"))
    with pytest.raises(ArtifactError, match="unknown classifier type 'oracle'"):
        Router.load(p)
    p = r.save(tmp_path / "r4")
    _edit(p, lambda c: c["catalog"]["models"]["gpt-4o"]["pricing"].update(input_per_1m=-5))
    with pytest.raises(ArtifactError, match="embedded catalog is invalid"):
        Router.load(p)
    p = r.save(tmp_path / "r5")
    _edit(p, lambda c: (c["classifier"].update(files=["x.joblib"]), c["created_with"].update({"scikit-learn": "0.1.0"})))
    with pytest.raises(ArtifactError, match="scikit-learn 0.1.0"):
        Router.load(p)


def test_registry_uri_without_registry_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/none.db")
    with pytest.raises(ArtifactError, match="cannot fetch models:/nope@champion"):
        Router.load("models:/nope@champion")

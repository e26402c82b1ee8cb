"""The learned classifier on a tiny data set with the hashing embedder (no model download)."""

import json

import numpy as np
import pytest

from router import ArtifactError, Router
from router.tasks.classifier import LearnedTaskClassifier, featurize
from router.embedders import HashingEmbedder
from router.training.data.datasets import LabelledPrompt, LabelledSet
from router.training.fit.tasks import choose_threshold, fit_task_classifier, leave_source_out, make_head, sample_weights

ROWS = {
    "code": ["write a python function to reverse a list", "fix this javascript bug in my loop",
             "implement a binary search in java", "refactor this python class", "write a bash script to copy files",
             "debug my python code it throws KeyError"],
    "creative": ["write a poem about the sea", "compose a short story about a dragon", "write song lyrics about rain",
                 "write a poem about autumn leaves", "a short story about a lonely robot", "write a haiku about snow"],
    "general": ["hi how are you today", "hello there friend", "good morning, how is it going",
                "hey what's up", "hi! nice to meet you", "hello, how have you been"],
}


def make_set(extra_source="b"):
    rows = []
    for task, prompts in ROWS.items():
        for i, p in enumerate(prompts):
            rows.append(LabelledPrompt(prompt=p, task=task, source="a" if i % 2 else extra_source,
                                       difficulty="easy" if i % 3 == 0 else ("hard" if i % 3 == 1 else None)))
    return LabelledSet(rows)


@pytest.fixture(scope="module")
def clf():
    return fit_task_classifier(make_set(), HashingEmbedder(256), threshold=0.0, head_params={"C": 10.0})


def test_learned_predictions(clf):
    preds = clf.predict(["write a python function to sort numbers", "write a poem about the moon", "hello how are you"])
    assert [p.task for p in preds] == ["code", "creative", "general"]
    assert all(p.source == "learned" for p in preds)
    assert all(abs(sum(p.probabilities.values()) - 1) < 1e-3 for p in preds)
    assert all(p.complexity in ("easy", "medium", "hard") for p in preds)
    assert clf.predict([]) == []


def test_gate_sends_low_confidence_to_regex(clf):
    gated = LearnedTaskClassifier(clf.embedder, clf.head, threshold=1.01, complexity_head=clf.complexity_head)
    preds = gated.predict(["Write a Python function to merge sort an array", "hello how are you"])
    assert all(p.source == "regex" for p in preds)
    assert [p.task for p in preds] == ["code", "general"]
    assert preds[0].probabilities  # the learned distribution is still reported


def test_choose_threshold_prefers_regex_only_where_it_is_better():
    from router.training.fit.tasks import LosoResult

    res = LosoResult(collections=["x"], index=np.arange(4), y_true=np.array(["a", "b", "c", "d"]),
                     y_pred=np.array(["a", "b", "x", "x"]), confidence=np.array([0.9, 0.8, 0.2, 0.1]))
    regex = np.array(["z", "z", "c", "d"])
    assert choose_threshold(res, regex) == pytest.approx(0.25)
    assert choose_threshold(res, np.array(["z"] * 4)) == 0.0


def test_leave_source_out_never_trains_on_the_held_out_collection():
    ds = make_set()
    X = featurize(HashingEmbedder(128), ds.prompts)
    seen = []

    class Spy:
        def __init__(self):
            self.inner = make_head("logreg", C=1.0)

        def fit(self, X_, y_, sample_weight=None):
            seen.append(len(y_))
            self.inner.fit(X_, y_, sample_weight=sample_weight)
            self.classes_ = self.inner.classes_
            return self

        def predict_proba(self, X_):
            return self.inner.predict_proba(X_)

    res = leave_source_out(ds, X, Spy, collections=["a", "b"])
    assert seen == [9, 9] and sorted(res.index.tolist()) == list(range(18))
    assert set(res.per_collection) == {"a", "b"}


def test_leave_source_out_on_threads_matches_one_fold_at_a_time():
    ds = make_set()
    X = featurize(HashingEmbedder(128), ds.prompts)
    one = leave_source_out(ds, X, lambda: make_head("logreg", C=1.0), collections=["a", "b"], n_jobs=1)
    two = leave_source_out(ds, X, lambda: make_head("logreg", C=1.0), collections=["a", "b"], n_jobs=2)
    assert one.collections == two.collections == ["a", "b"]
    np.testing.assert_array_equal(one.index, two.index)
    np.testing.assert_array_equal(one.y_pred, two.y_pred)
    np.testing.assert_allclose(one.confidence, two.confidence)
    assert one.per_collection == two.per_collection


def test_sample_weights_balance_collections():
    rows = [LabelledPrompt("p", "code", "big")] * 100 + [LabelledPrompt("q", "qa", "small")] * 4
    w = sample_weights(LabelledSet(rows), power=1.0)
    assert w[:100].sum() == pytest.approx(w[100:].sum())
    assert sample_weights(LabelledSet(rows), power=0.0).tolist() == [1.0] * 104


def test_router_save_load_round_trip_with_learned_classifier(clf, tmp_path):
    from router import ModelCatalog

    r = Router(ModelCatalog.load(), classifier=clf, context_turns=2)
    path = r.save(tmp_path / "learned")
    cfg = json.loads((path / "classifier" / "config.json").read_text())
    assert cfg["embedder"] == {"type": "hashing", "n_features": 256} and "head.npz" in cfg["files"]
    again = Router.load(path)
    prompts = ["write a python function to sort numbers", "write a poem about the moon"]
    a, b = r.classify(prompts), again.classify(prompts)
    assert [p.task for p in a] == [p.task for p in b]
    assert [p.confidence for p in a] == pytest.approx([p.confidence for p in b])
    assert again.context_turns == 2


def test_corrupt_head_is_an_artifact_error(clf, tmp_path):
    from router import ModelCatalog

    path = Router(ModelCatalog.load(), classifier=clf).save(tmp_path / "r")
    (path / "classifier" / "head.npz").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="head.npz was changed after the router was saved"):
        Router.load(path)  # the manifest catches it before anything is read
    cfg = json.loads((path / "router.json").read_text())
    del cfg["manifest"]  # a folder saved before manifests: reading the head itself fails cleanly
    (path / "router.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtifactError, match="head.npz is corrupt"):
        Router.load(path)
    path = Router(ModelCatalog.load(), classifier=clf).save(tmp_path / "r2")
    (path / "classifier" / "complexity.npz").unlink()
    with pytest.raises(ArtifactError, match="complexity.npz is listed in the manifest .* but missing"):
        Router.load(path)


def test_conversation_context_keeps_follow_ups_on_task(clf):
    from router import ModelCatalog

    convo = [
        {"role": "user", "content": "write a python function to reverse a list"},
        {"role": "assistant", "content": "def reverse(xs):\n    return xs[::-1]"},
        {"role": "user", "content": "now make it faster"},
    ]
    with_ctx = Router(ModelCatalog.load(), classifier=clf, context_turns=2)
    no_ctx = Router(ModelCatalog.load(), classifier=clf, context_turns=0)
    from router.text.request import parse_request

    assert with_ctx.classify([convo])[0].task == "code"
    text = with_ctx._text_for_classifier(parse_request(convo))
    assert text.startswith("now make it faster") and "reverse" in text
    assert no_ctx._text_for_classifier(parse_request(convo)) == "now make it faster"


def test_fit_refuses_a_single_label():
    from router import DataError

    ds = LabelledSet([LabelledPrompt("a", "code", "s"), LabelledPrompt("b", "code", "s")])
    with pytest.raises(DataError, match="at least two task labels"):
        fit_task_classifier(ds, HashingEmbedder(64), threshold=0.0)


def test_feature_layout_names_the_blocks_and_is_checked(clf, tmp_path):
    from router.embedders import make_embedder
    from router.tasks.classifier import load_classifier
    from router.tasks.layout import FeatureLayout
    from router.text.features import FEATURE_NAMES

    assert clf.layout.blocks == (("text", 256), ("hand", len(FEATURE_NAMES)))
    with pytest.raises(ArtifactError, match=r"text\[256\] \+ hand\[10\]"):
        clf.predict_features(np.zeros((1, 200), np.float32), ["x"])

    folder = tmp_path / "classifier"
    folder.mkdir()
    config = clf.save_state(folder)
    assert config["layout"] == {"blocks": [{"name": "text", "width": 256}, {"name": "hand", "width": 10}],
                                "hand_features": list(FEATURE_NAMES)}
    again = load_classifier(config, folder)
    assert again.layout == clf.layout
    # a layout with views its embedder does not compute
    views = FeatureLayout.build(256, ("first_sentence",)).to_dict()
    with pytest.raises(ArtifactError, match="views"):
        load_classifier({**config, "layout": views}, folder)
    # hand features this version does not compute
    with pytest.raises(ArtifactError, match="hand features"):
        load_classifier({**config, "layout": {**config["layout"], "hand_features": ["x"] * 10}}, folder)
    # an embedder of another width than the head reads
    with pytest.raises(ArtifactError, match="head reads 266 features"):
        load_classifier({**config, "layout": FeatureLayout.build(100).to_dict()}, folder)
    # views: one block per view, of the inner embedder's width
    viewed = FeatureLayout.infer(make_embedder("hashing@views"), 3 * 1024 + len(FEATURE_NAMES))
    assert [n for n, _ in viewed.blocks] == ["text", "view:first_sentence", "view:last_sentence", "hand"]
    assert viewed.block("view:last_sentence") == slice(2048, 3072)

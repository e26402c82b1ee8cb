"""The fine-tuned encoder's own head averaged into a gated classifier's English answers
(:mod:`router.tasks.encoder_head`): the arithmetic, the class order, what is saved and refused."""

import json

import numpy as np
import pytest

from router import ArtifactError, Router
from router.catalog.model_catalog import ModelCatalog
from router.embedders import GatedEmbedder, HashingEmbedder, make_embedder, with_cache
from router.embedders.finetuned import FinetunedEmbedder
from router.predictors import linear
from router.tasks.encoder_head import ENCODER_HEAD_MIX, EncoderHead
from router.text.language import english_mask
from router.training.fit.tasks import english_encoder_head, fit_task_classifier
from tests.support.labelled import BILINGUAL, TRANSLATION, labelled


def test_from_encoder_orders_rows_as_the_classifier_and_drops_what_it_lacks():
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.array([0.1, 0.2, 0.3], np.float32)
    head = EncoderHead.from_encoder(["a", "b", "c"], w, b, 2.0, ["c", "a"], 0.5)
    assert head.weight.tolist() == [w[2].tolist(), w[0].tolist()] and head.bias.tolist() == pytest.approx([0.3, 0.1])
    assert head.dim == 4
    v = np.array([[1.0, 0, 0, 0]], np.float32)
    want = linear.softmax((v @ w[[2, 0]].T + b[[2, 0]]) / 2.0)
    assert head.proba(v) == pytest.approx(want)
    assert head.blend(np.array([[0.2, 0.8]]), v) == pytest.approx(0.5 * np.array([[0.2, 0.8]]) + 0.5 * want)
    assert EncoderHead.from_encoder(["a", "b"], w[:2], b[:2], 1.0, ["a", "z"], 0.5) is None  # cannot answer z


@pytest.mark.parametrize("kwargs, match", [({"mix": 0.0}, "mix"), ({"mix": 1.5}, "mix"),
                                           ({"temperature": 0.0}, "temperature"),
                                           ({"bias": np.zeros(2, np.float32)}, "bias")])
def test_bad_heads_are_refused(kwargs, match):
    args = {"weight": np.zeros((3, 4), np.float32), "bias": np.zeros(3, np.float32), "temperature": 1.0, "mix": 0.5}
    with pytest.raises(ValueError, match=match):
        EncoderHead(**{**args, **kwargs})


def _labelled():
    return labelled(BILINGUAL + TRANSLATION)


@pytest.fixture(scope="module")
def encoder():
    return FinetunedEmbedder()


@pytest.fixture(scope="module")
def classifier(encoder, tmp_path_factory):
    embedder = with_cache(GatedEmbedder(encoder, HashingEmbedder(32)), tmp_path_factory.mktemp("c") / "c.sqlite")
    return fit_task_classifier(_labelled(), embedder, threshold=0.0, head_params={"C": 1.0})


def test_a_gated_fine_tuned_classifier_averages_the_encoder_head_on_english_rows(classifier, encoder):
    head = classifier.encoder_head
    assert head is not None and head.mix == ENCODER_HEAD_MIX and head.temperature == encoder.temperature
    texts = ["Please translate this into Spanish: the meeting moved to Friday.", "escribe un poema sobre la luna",
             "Write a short story about a lighthouse keeper."]
    X = classifier.featurize(texts)
    en = english_mask(texts)
    assert en.tolist() == [True, False, True]
    got = np.array([[p.probabilities[c] for c in classifier.classes] for p in classifier.predict_features(X, texts)])
    raw = linear.predict_proba(classifier.head, X)
    own = encoder.predict_proba([texts[i] for i in np.flatnonzero(en)])[:, [encoder.labels.index(c) for c in classifier.classes]]
    own = own / own.sum(1, keepdims=True)
    want = raw.copy()
    want[en] = 0.5 * linear.tempered(raw[en], classifier.english_temperature) + 0.5 * own
    assert got == pytest.approx(want, abs=1e-5)
    assert got[~en] == pytest.approx(raw[~en], abs=1e-6)  # the other side: the fitted head alone
    # without the encoder head the English answers differ
    alone = fit_task_classifier(_labelled(), GatedEmbedder(encoder, HashingEmbedder(32)), threshold=0.0,
                                head_params={"C": 1.0}, encoder_mix=0.0)
    assert alone.encoder_head is None
    assert not np.allclose([alone.predict_features(X, texts)[0].probabilities[c] for c in classifier.classes], got[0])


def test_the_encoder_head_is_saved_with_the_router_and_checked_at_load(classifier, tmp_path):
    router = Router(ModelCatalog.load(), classifier=classifier)
    texts = ["translate 'thank you' into Italian", "escribe un poema sobre la luna"]
    before = [p.probabilities for p in classifier.predict(texts)]
    decided = [(d.task, d.task_confidence) for d in router.route_many(texts)]
    path = router.save(tmp_path / "r")
    cfg = json.loads((path / "classifier" / "config.json").read_text())
    assert cfg["encoder_head"] == {"file": "encoder_head.npz", "temperature": classifier.encoder_head.temperature,
                                   "mix": ENCODER_HEAD_MIX}
    assert "encoder_head.npz" in cfg["files"]
    again = Router.load(path)
    assert again.classifier.encoder_head is not None
    after = [p.probabilities for p in again.classifier.predict(texts)]
    for a, b in zip(after, before):
        assert a == pytest.approx(b, abs=1e-5)
    redecided = [(d.task, d.task_confidence) for d in again.route_many(texts)]
    assert [t for t, _ in redecided] == [t for t, _ in decided]
    assert [c for _, c in redecided] == pytest.approx([c for _, c in decided], abs=1e-5)


@pytest.mark.parametrize("change, match", [
    (lambda c: c["encoder_head"].update(mix="half"), "encoder_head.mix must be a number"),
    (lambda c: c["encoder_head"].update(mix=2.0), "mix must be in"),
    (lambda c: c["encoder_head"].update(file="../x.npz"), "encoder_head.file"),
    (lambda c: c.update(encoder_head=[1]), "encoder_head must be a mapping"),
])
def test_a_bad_encoder_head_config_is_an_artifact_error(classifier, tmp_path, change, match):
    from router.tasks.classifier import load_classifier

    folder = tmp_path / "classifier"
    folder.mkdir()
    cfg = json.loads(json.dumps(classifier.save_state(folder)))
    change(cfg)
    with pytest.raises(ArtifactError, match=match):
        load_classifier(cfg, folder, embedder=classifier.embedder)


def test_a_wrong_shaped_encoder_head_file_is_an_artifact_error(classifier, tmp_path):
    from router.tasks.classifier import load_classifier

    folder = tmp_path / "classifier"
    folder.mkdir()
    cfg = classifier.save_state(folder)
    np.savez(folder / "encoder_head.npz", weight=np.zeros((2, 384), np.float32), bias=np.zeros(2, np.float32))
    with pytest.raises(ArtifactError, match=r"encoder_head.npz: weight has shape \(2, 384\)"):
        load_classifier(cfg, folder, embedder=classifier.embedder)


def test_only_a_gated_fine_tuned_english_side_gets_one(encoder):
    classes = ["code", "creative"]
    assert english_encoder_head(GatedEmbedder(HashingEmbedder(8), HashingEmbedder(8)), classes, 0.5) is None
    assert english_encoder_head(encoder, classes, 0.5) is None  # not gated
    assert english_encoder_head(GatedEmbedder(encoder, HashingEmbedder(8)), classes, 0.0) is None
    assert english_encoder_head(make_embedder("gated"), classes, 0.5) is not None

"""The language gate: the English rule, the gated embedder (one side per text, blocks in a fixed
layout), its config, cache and training rows, and a router saved and loaded with it."""

import json

import numpy as np
import pytest

from router import ArtifactError, Router
from router.catalog.model_catalog import ModelCatalog
from router.embedders import CachedEmbedder, GatedEmbedder, HashingEmbedder, make_embedder, with_cache
from router.embedders.registry import GATED_FAST_SPEC, GATED_SPEC
from router.text.language import GATE_VERSION, english_mask, looks_english
from router.training.fit.tasks import fit_task_classifier, gated_training_set
from tests.support.labelled import BILINGUAL, labelled

ENGLISH = [
    "Write a Python function that returns the n-th Fibonacci number.",
    "Can you explain why the sky is blue?",
    "Summarize the following article in three sentences: The council voted on Tuesday to expand the park.",
    "Please translate this sentence into German: the weather is nice today.",
]
OTHER = [
    "Écris un poème sur la mer et le vent d'automne.",
    "¿Puedes explicarme por qué el cielo es azul?",
    "Warum bekomme ich hier einen Fehler, wenn ich die Datei öffne?",
    "给我写一首关于秋天的诗",
    "Напиши функцию на Python, которая сортирует список.",
    "Voy a estar 4 días en Lisboa a mediados de octubre con mi pareja, me ayudas a organizar un itinerario?",
    "Moin, was geht?",
    "",
    "12345 + 678",
]


def test_the_rule_reads_english_and_not_the_other_languages():
    assert all(looks_english(t) for t in ENGLISH)
    assert not any(looks_english(t) for t in OTHER)
    assert english_mask(ENGLISH + OTHER).tolist() == [True] * len(ENGLISH) + [False] * len(OTHER)
    assert english_mask([]).shape == (0,)


def test_a_long_prompt_is_judged_by_its_head_and_tail():
    pasted = "Der Bundestag hat am Dienstag über den Haushalt beraten und ihn beschlossen. " * 40
    assert not looks_english(pasted)
    # the ask sits in the tail, in English, after a German document: the middle is not read
    assert looks_english("Here is a text that I need you to help me with. " * 15 + pasted
                         + " What is the main point of this text and why does it matter?" * 8)


class Counting:
    """A fake embedder that records what it was asked to embed."""

    def __init__(self, name, dim):
        self.name, self.dim, self.calls = name, dim, []

    def encode(self, texts, *, show_progress=False):
        self.calls.append(list(texts))
        return np.array([[len(t) + k for k in range(self.dim)] for t in texts], dtype=np.float32).reshape(len(texts), self.dim)

    def to_config(self):
        return {"type": "hashing", "n_features": self.dim}


def test_each_text_is_embedded_by_one_side_into_its_own_block():
    en, ot = Counting("en", 2), Counting("ot", 3)
    g = GatedEmbedder(en, ot)
    texts = [ENGLISH[0], OTHER[0], ENGLISH[1]]
    X = g.encode(texts)
    assert X.shape == (3, 2 + 3 + 1) and X.dtype == np.float32
    assert en.calls == [[ENGLISH[0], ENGLISH[1]]] and ot.calls == [[OTHER[0]]]
    assert X[0].tolist() == [len(ENGLISH[0]), len(ENGLISH[0]) + 1, 0, 0, 0, 1]
    assert X[1].tolist() == [0, 0, len(OTHER[0]), len(OTHER[0]) + 1, len(OTHER[0]) + 2, 0]
    assert X[2, -1] == 1 and not X[2, 2:5].any()


def test_a_batch_of_one_side_still_has_the_full_width():
    g = GatedEmbedder(Counting("en", 2), Counting("ot", 3))
    assert g.encode(ENGLISH[:1]).shape == (1, 6)
    assert g.encode(OTHER[:2]).shape == (2, 6)
    assert g.encode([]).shape == (0, 6)


def test_paths_give_every_text_the_other_side_and_english_texts_both():
    g = GatedEmbedder(HashingEmbedder(16), HashingEmbedder(8))
    texts = [OTHER[1], ENGLISH[2], ENGLISH[0], OTHER[3]]
    X_other, idx, X_en = g.encode_paths(texts)
    assert idx.tolist() == [1, 2]
    assert X_other.shape == (4, 25) and X_en.shape == (2, 25)
    served = X_other.copy()
    served[idx] = X_en
    assert np.allclose(served, g.encode(texts))
    assert not X_other[:, -1].any() and X_en[:, -1].all()


def test_config_round_trip_and_spec():
    g = make_embedder("hashing|hashing")
    assert isinstance(g, GatedEmbedder)
    cfg = json.loads(json.dumps(g.to_config()))
    assert cfg["type"] == "gated" and cfg["gate"] == GATE_VERSION
    again = make_embedder(cfg)
    assert again.name == g.name and GATE_VERSION in g.name
    assert np.allclose(again.encode(ENGLISH + OTHER), g.encode(ENGLISH + OTHER))
    assert GATED_SPEC.startswith("task-minilm|")
    for short, spec in (("gated", GATED_SPEC), ("gated-fast", GATED_FAST_SPEC)):
        built = make_embedder(short)
        assert isinstance(built, GatedEmbedder) and built.to_config() == make_embedder(spec).to_config()
    fast = make_embedder("gated-fast").to_config()
    assert fast["english"]["type"] == "finetuned" and fast["other"]["type"] == "views"
    assert fast["other"]["inner"]["type"] == "use"  # USE alone: no MiniLM on the other languages
    minilm = make_embedder("gated").to_config()["other"]["inner"]["parts"][0]
    assert (minilm["type"], minilm["max_length"], minilm["head_tail"]) == ("onnx", 128, True)  # bounded
    with pytest.raises(ArtifactError, match="gate 'english-words-v0'"):
        make_embedder({**cfg, "gate": "english-words-v0"})
    with pytest.raises(ArtifactError, match="'english' and 'other'"):
        make_embedder({"type": "gated", "gate": GATE_VERSION, "english": cfg["english"]})


def test_the_cache_keeps_each_side_under_its_own_name(tmp_path):
    cached = with_cache(GatedEmbedder(HashingEmbedder(16), HashingEmbedder(8)), tmp_path / "c.sqlite")
    assert isinstance(cached, GatedEmbedder)
    assert isinstance(cached.english, CachedEmbedder) and isinstance(cached.other, CachedEmbedder)
    plain = GatedEmbedder(HashingEmbedder(16), HashingEmbedder(8)).encode(ENGLISH + OTHER)
    assert np.allclose(cached.encode(ENGLISH + OTHER), plain)
    assert np.allclose(cached.encode(ENGLISH + OTHER), plain)  # read back from the cache


def _labelled():
    return labelled(BILINGUAL)


def test_training_rows_are_the_other_side_for_all_and_the_english_side_again():
    ds = _labelled()
    g = GatedEmbedder(HashingEmbedder(32), HashingEmbedder(16))
    fit_ds, X = gated_training_set(ds, g)
    english = [r.prompt for r in ds.rows if looks_english(r.prompt)]
    assert len(english) == 4
    assert len(fit_ds) == len(ds) + 4 and X.shape[0] == len(ds) + 4
    assert [r.prompt for r in fit_ds.rows[len(ds):]] == english
    assert not X[: len(ds), 32 + 16].any() and X[len(ds):, 32 + 16].all()


def test_a_router_with_a_gated_classifier_saves_loads_and_routes(tmp_path):
    ds = _labelled()
    clf = fit_task_classifier(ds, GatedEmbedder(HashingEmbedder(64), HashingEmbedder(32)), threshold=0.0,
                              head_params={"C": 10.0})
    assert clf.metadata["rows"] == len(ds)
    router = Router(ModelCatalog.load(), classifier=clf)
    before = router.route_many(["write a python function to sort a list", "escribe un poema sobre la luna"])
    path = router.save(tmp_path / "r")
    cfg = json.loads((path / "classifier" / "config.json").read_text())
    assert cfg["embedder"]["type"] == "gated"
    again = Router.load(path)
    after = again.route_many(["write a python function to sort a list", "escribe un poema sobre la luna"])
    assert [d.model for d in after] == [d.model for d in before]
    assert [d.task for d in after] == ["code", "creative"]


def test_eval_tasks_knows_when_an_encoder_was_fine_tuned_on_the_data():
    from router.cli.training import _holds_finetuned

    assert _holds_finetuned(make_embedder(GATED_SPEC.replace("minilm-onnx:128+use@views", "hashing")).to_config())
    assert _holds_finetuned(make_embedder("task-minilm@views").to_config())
    assert not _holds_finetuned(make_embedder("hashing|hashing@views").to_config())


def test_the_english_side_temperature_softens_english_rows_only_and_is_saved(tmp_path):
    from router.tasks.classifier import LearnedTaskClassifier
    from router.training.fit.tasks import GATED_ENGLISH_TEMPERATURE

    ds = _labelled()
    clf = fit_task_classifier(ds, GatedEmbedder(HashingEmbedder(64), HashingEmbedder(32)), threshold=0.0,
                              head_params={"C": 10.0})
    assert clf.english_temperature == GATED_ENGLISH_TEMPERATURE > 1
    plain = LearnedTaskClassifier(clf.embedder, clf.head, threshold=0.0, complexity_head=clf.complexity_head)
    probe = ["write a python function to sort a list", "escribe un poema sobre la luna"]
    hot, cold = plain.predict(probe), clf.predict(probe)
    assert [p.task for p in hot] == [p.task for p in cold]
    assert cold[0].confidence < hot[0].confidence  # English: softened
    assert cold[1].probabilities == hot[1].probabilities  # the other side: as the head says
    assert abs(sum(cold[0].probabilities.values()) - 1) < 1e-3
    path = Router(ModelCatalog.load(), classifier=clf).save(tmp_path / "r")
    again = Router.load(path).classifier
    assert again.english_temperature == clf.english_temperature
    assert [p.probabilities for p in again.predict(probe)] == [p.probabilities for p in cold]
    top = json.loads((path / "router.json").read_text())
    top["classifier"]["english_temperature"] = 0
    del top["manifest"]  # as a folder saved before manifests: the field check itself answers
    (path / "router.json").write_text(json.dumps(top))
    with pytest.raises(ArtifactError, match="'english_temperature' must be a finite number > 0, got 0"):
        Router.load(path)
    assert fit_task_classifier(ds, HashingEmbedder(64), threshold=0.0).english_temperature == 1.0


def test_the_widths_are_recorded_so_a_loaded_gate_never_runs_a_side_it_has_no_text_for(tmp_path):
    g = GatedEmbedder(HashingEmbedder(16), HashingEmbedder(8))
    assert "dims" not in g.to_config()
    with_cache(g, tmp_path / "c.sqlite").encode_paths(ENGLISH + OTHER)  # learned through a cache, known to g
    cfg = json.loads(json.dumps(g.to_config()))
    assert cfg["dims"] == [16, 8]
    again = make_embedder(cfg)
    en, ot = Counting("en", 16), Counting("ot", 8)
    again.english, again.other = en, ot
    assert again.encode(ENGLISH[:2]).shape == (2, 25) and ot.calls == []
    assert again.encode(OTHER[:1]).shape == (1, 25) and en.calls == [ENGLISH[:2]]
    for bad in ([16], [16, 0], [16, "8"], [True, 8]):
        with pytest.raises(ArtifactError, match="'dims' must be two positive integers"):
            make_embedder({**cfg, "dims": bad})


def test_english_rows_reads_back_the_gate_of_encoded_rows():
    g = GatedEmbedder(HashingEmbedder(16), HashingEmbedder(8))
    texts = ENGLISH + OTHER
    assert GatedEmbedder.english_rows(g.encode(texts)).tolist() == english_mask(texts).tolist()

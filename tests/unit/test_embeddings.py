import numpy as np
import pytest

from router.embedders import CachedEmbedder, ConcatEmbedder, HashingEmbedder, clip_text, make_embedder


class Counting:
    def __init__(self, name="fake"):
        self.name = name
        self.calls = []

    def encode(self, texts, *, show_progress=False):
        self.calls.append(list(texts))
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)

    def to_config(self):
        return {"type": "fake"}


def test_cache_embeds_only_missing_texts_and_persists(tmp_path):
    inner = Counting()
    cache = CachedEmbedder(inner, tmp_path / "c.sqlite")
    a = cache.encode(["aa", "b", "aa"])
    assert inner.calls == [["aa", "b"]]
    assert a.shape == (3, 3) and a[0, 0] == 2 and (a[0] == a[2]).all()
    assert (cache.hits, cache.misses) == (0, 2)
    again = CachedEmbedder(inner, tmp_path / "c.sqlite")
    b = again.encode(["b", "ccc"])
    assert inner.calls[-1] == ["ccc"]
    np.testing.assert_array_equal(b[0], a[1])
    assert (again.hits, again.misses) == (1, 1)


def test_cache_keys_include_the_model(tmp_path):
    one, two = Counting("m1"), Counting("m2")
    CachedEmbedder(one, tmp_path / "c.sqlite").encode(["x"])
    CachedEmbedder(two, tmp_path / "c.sqlite").encode(["x"])
    assert one.calls == [["x"]] and two.calls == [["x"]]


def test_clip_keeps_head_and_tail():
    text = "ASK at start " + "filler " * 500 + " please summarise"
    clipped = clip_text(text)
    assert len(clipped) < 1100 and clipped.startswith("ASK") and clipped.endswith("summarise")
    assert clip_text("short") == "short"


def test_hashing_embedder_and_factory():
    e = make_embedder("hashing")
    v = e.encode(["hello world", "hello world", "completely different"])
    assert v.shape == (3, 1024)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, rtol=1e-5)
    assert (v[0] == v[1]).all() and (v[0] @ v[2]) < 0.9
    assert isinstance(make_embedder(e.to_config()), HashingEmbedder)
    both = make_embedder("hashing+hashing")
    assert isinstance(both, ConcatEmbedder) and both.encode(["x"]).shape == (1, 2048)
    assert make_embedder({"type": "sentence-transformers", "model": "x"}).name.startswith("st:x")
    with pytest.raises(Exception, match="unknown embedder type"):
        make_embedder({"type": "nope"})


def test_length_batches_split_where_padding_would_more_than_double_a_row():
    from router.embedders.base import length_batches

    # a prompt (120 pieces) with its two sentence views (12, 9) and a mid-length text (70)
    batches = length_batches([12, 120, 9, 70], batch_size=64)
    assert batches == [[1, 3], [0, 2]]
    # every row exactly once, longest first, no batch over its size
    lengths = [5, 50, 7, 300, 64, 64, 64, 31, 2, 2, 150]
    batches = length_batches(lengths, batch_size=2)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    assert max(len(b) for b in batches) == 2
    assert all(2 * lengths[b[-1]] >= lengths[b[0]] for b in batches)
    assert length_batches([], 8) == []


def test_the_gated_other_side_bounds_minilm_at_128_pieces():
    """The gated default reads the other languages with MiniLM on at most 128 word pieces, the
    first and last halves, so a long or non-Latin prompt costs no more than a 128-piece one; the
    frozen pipeline (the default with outcomes) keeps the first 256 (BENCHMARKS.md, "A bounded
    other side")."""
    from router.embedders.registry import GATED_SPEC
    from router.training.fit.train import DEFAULT_EMBEDDER_SPEC

    minilm, use = make_embedder(GATED_SPEC).to_config()["other"]["inner"]["parts"]
    assert (minilm["type"], minilm["max_length"], minilm["head_tail"], use["type"]) == ("onnx", 128, True, "use")
    frozen = make_embedder(DEFAULT_EMBEDDER_SPEC).to_config()["inner"]["parts"][0]
    assert frozen["type"] == "onnx" and "max_length" not in frozen

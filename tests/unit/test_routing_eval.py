"""The routing evaluation harness: the policies it sweeps, the report on hand-computed cases,
cross-fitted baselines, and `router train --outcomes` -> `router eval` end to end (hashing
embedder, a small RouterBench-format file)."""

import json

import numpy as np
import pytest

from router.cli.main import main
from router.training.evaluate.report import _cross_fitted_baselines
from router.training.evaluate.routing import OutcomeMatrix, evaluate_routing, id_bucket, route_gap, route_threshold
from tests.support.routerbench_files import RB_MODELS, write_rb_catalog, write_task_file


def test_threshold_and_gap_pick_the_cheapest_model_good_enough():
    q = np.array([[0.5, 0.8, 0.95], [0.9, 0.7, 0.6]])
    c = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    assert route_threshold(q, c, 0.75).tolist() == [1, 0]
    assert route_threshold(q, c, 0.99).tolist() == [2, 0]  # nothing meets it: the best predicted
    assert route_gap(q, c, 0.0).tolist() == [2, 0]
    assert route_gap(q, c, 0.2).tolist() == [1, 0]
    assert route_gap(q, c, 1.0).tolist() == [0, 0]


def test_the_sweep_breaks_ties_and_filters_like_the_router():
    # equal cost: the higher predicted quality wins, then the model name (router.policy.decide)
    q = np.array([[0.8, 0.9, 0.9]])
    c = np.array([[1.0, 1.0, 1.0]])
    assert route_threshold(q, c, 0.5, ["a", "c", "b"]).tolist() == [2]
    assert route_gap(q, c, 0.5, ["a", "c", "b"]).tolist() == [2]
    # an ineligible model (context window, vision) is never picked
    assert route_threshold(q, c, 0.5, ["a", "c", "b"], np.array([[True, True, False]])).tolist() == [1]
    assert route_threshold(q, c, 0.95, ["a", "c", "b"], np.array([[True, False, False]])).tolist() == [0]


def _matrix():
    # 4 prompts, a cheap model right on the first two, a dear one right on all but the last
    quality = np.array([[1, 1], [1, 1], [0, 1], [0, 0]], float)
    cost = np.array([[1, 10], [1, 10], [1, 10], [1, 10]], float)
    ids = [f"p{i}" for i in range(4)]
    return OutcomeMatrix(ids, ids, ["s"] * 4, ["cheap", "dear"], quality, cost)


def test_report_single_models_oracle_and_a_perfect_router():
    data = _matrix()
    perfect = (data.quality.copy(), data.cost.copy())
    blind = (np.full((4, 2), 0.5), data.cost.copy())
    rep = evaluate_routing(data, {"perfect": perfect, "blind": blind}, pair=("dear", "cheap"))
    assert rep["single_models"] == {"cheap": {"cost": 1.0, "quality": 0.5}, "dear": {"cost": 10.0, "quality": 0.75}}
    # oracle: cheap on p0, p1, p3 (nobody right: cheapest), dear on p2 -> cost (1+1+10+1)/4
    assert rep["oracle"] == {"cost": 3.25, "quality": 0.75}
    assert rep["best_single_model"] == "dear"
    assert rep["mix_single_models_aiq"] == pytest.approx(0.625, abs=1e-3)  # line from (1,.5) to (10,.75)
    perfect_r, blind_r = rep["routers"]["perfect"], rep["routers"]["blind"]
    # the perfect router reaches 0.75 at cost 3.25 and is flat after: beats the mix
    assert perfect_r["cost_to_match_best_ratio"] == pytest.approx(0.325)
    assert perfect_r["aiq"] > rep["mix_single_models_aiq"] + 0.05
    # equal predictions: cheapest (cost 1, 0.5) or, with gap 0, still cheapest: no better than the mix
    assert blind_r["aiq"] <= rep["mix_single_models_aiq"] + 1e-9
    assert perfect_r["pair"]["apgr"] > blind_r["pair"]["apgr"]


def test_cross_fitted_baselines_never_see_the_prompt_they_route():
    rng = np.random.default_rng(0)
    n = 60
    ids = [f"q{i}" for i in range(n)]
    quality = rng.integers(0, 2, size=(n, 2)).astype(float)
    cost = np.tile([1.0, 5.0], (n, 1))
    data = OutcomeMatrix(ids, ids, ["s"] * n, ["a", "b"], quality, cost)
    tasks = ["qa"] * n
    X = rng.standard_normal((n, 8))
    out = _cross_fitted_baselines(data, X, tasks, folds=5)
    table_q, _ = out["task-table"]
    fold = np.array([id_bucket(p, 5) for p in ids])
    for i in range(n):
        others = fold != fold[i]
        assert table_q[i] == pytest.approx(quality[others].mean(0))
    # a prompt whose own outcome is unique: a baseline that saw it would predict above 0
    lone = quality.copy()
    lone[:, 0] = 0.0
    lone[7, 0] = 1.0
    out = _cross_fitted_baselines(OutcomeMatrix(ids, ids, ["s"] * n, ["a", "b"], lone, cost), X, tasks, folds=5)
    assert out["knn"][0][7, 0] == 0.0 and out["task-table"][0][7, 0] == 0.0
    assert out["knn"][0][:, 0].max() > 0  # other prompts do see it




def _routerbench_csv(path, n=80):
    """Maths prompts: only GPT-4 is right; greetings: both are. Plus a model not in the catalog."""
    cols = ["", "sample_id", "prompt", "eval_name", *RB_MODELS, "new/model-x"]
    cols += [f"{m}|total_cost" for m in (*RB_MODELS, "new/model-x")]
    cols += [f"{m}|model_response" for m in (*RB_MODELS, "new/model-x")] + ["oracle_model_to_route_to"]
    lines = [",".join(cols)]
    for i in range(n):
        hard = i % 2 == 0
        prompt = (f"['Prove that the integral of x^{i} from 0 to 1 equals 1/{i + 1} and solve the equation']"
                  if hard else f"['hello there friend number {i}, how are you today?']")
        scores = ["1", "0" if hard else "1", "1"]
        lines.append(",".join([str(i), f"id{i}", f'"{prompt}"', "maths" if hard else "chat", *scores,
                               "0.003", "0.0002", "0.0001", "A", "A", "A", RB_MODELS[0]]))
    path.write_text("\n".join(lines) + "\n")
    return path




def test_train_with_outcomes_then_eval_writes_report_and_plot(tmp_path, capsys):
    csv = _routerbench_csv(tmp_path / "rb.csv")
    out = tmp_path / "router"
    assert main(["train", "--out", str(out), "--data", str(write_task_file(tmp_path / "t.jsonl")), "--no-shared",
                 "--embedder", "hashing", "--cache", "", "--catalog", str(write_rb_catalog(tmp_path / "cat.json")),
                 "--outcomes", str(csv), "--no-track", "--json"]) == 0
    capsys.readouterr()
    from router import Router

    trained = Router.load(out)
    # router train fits the price curve (targets met on average at least cost) and calibrates
    # the heads out of fold
    curve = trained.policy.price_curve
    assert len(curve) >= 2 and curve[0][1] == 0.0 and trained.policy.price(0.0) == curve[-1][1]
    assert set(trained.quality_model.calibration) == set(RB_MODELS[:2])
    assert trained.policy.anchor == RB_MODELS[0]  # right on every prompt of the file
    assert trained.route("solve the equation 3x + 3 = 9", tier="budget").rule == "best_value"
    for extra in ([], ["--all-rows"]):
        rep_dir = tmp_path / ("all" if extra else "held")
        assert main(["eval", "--router", str(out), "--outcomes", str(csv), "--out", str(rep_dir),
                     "--cache", "", *extra]) == 0
        captured = capsys.readouterr()
        text = captured.out + captured.err
        assert "router " in text and "knn" in text and "task-table" in text
        assert "not in the router's catalog: new/model-x" in text
        rep = json.loads((rep_dir / "routing_eval.json").read_text())
        assert (rep_dir / "cost_quality.png").stat().st_size > 1000
        assert set(rep["routers"]) == {"router", "knn", "task-table"}
        assert rep["models"] == list(RB_MODELS)  # the model outside the catalog is left out
        assert rep["prompts"] == 80 if extra else 0 < rep["prompts"] < 80
        router = rep["routers"]["router"]
        assert set(router) >= {"threshold", "gap", "value", "max_quality"}
        # the learned router separates maths (GPT-4 only) from greetings (either): it matches
        # GPT-4's quality well below GPT-4's cost
        assert router["cost_to_match_best_ratio"] is not None and router["cost_to_match_best_ratio"] < 0.8
        assert router["aiq"] > rep["mix_single_models_aiq"]

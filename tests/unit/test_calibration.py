"""Out-of-fold calibration of the quality heads (router.training.fit.calibrate) and its
persistence in LearnedQualityModel."""

import numpy as np
import pandas as pd
import pytest

from router import ModelCatalog, Router
from router.predictors.learned import LearnedQualityModel
from router.training.fit.calibrate import fit_platt, out_of_fold_quality
from router.types import TaskPrediction

CATALOG = {
    "defaults": {"provider": {"base_url": "http://127.0.0.1:1/v1", "api_key_env": "KEY"}},
    "models": {
        "a": {"pricing": {"input_per_1m": 0.1, "output_per_1m": 0.1}, "context_window": 8000,
              "max_output_tokens": 1000, "quality_priors": {"default": 0.6}},
        "b": {"pricing": {"input_per_1m": 10, "output_per_1m": 30}, "context_window": 8000,
              "max_output_tokens": 1000, "quality_priors": {"default": 0.9}},
    },
}


def test_platt_pulls_overconfident_predictions_to_the_mean():
    rng = np.random.default_rng(0)
    pred = rng.uniform(0.05, 0.95, 4000)
    truth = 0.5 + 0.3 * (pred - 0.5)  # the head's deviations are borne out only 30%
    score = (rng.random(4000) < truth).astype(float)
    a, b = fit_platt(pred, score)
    assert 0.1 < a < 0.6 and abs(b) < 0.15
    # honest predictions keep a ~ 1
    a2, _ = fit_platt(pred, (rng.random(4000) < pred).astype(float))
    assert a2 == pytest.approx(1.0, abs=0.15)
    assert fit_platt(np.full(10, 0.7), np.ones(10)) == (1.0, 0.0)  # nothing to fit


class _Fake:
    def __init__(self, seen):
        self.seen = seen

    def predict_quality(self, texts, tasks, models, features=None):
        return np.array([[float(t in self.seen)] * len(models) for t in texts])


def test_out_of_fold_never_predicts_a_prompt_from_a_model_that_saw_it():
    ids = [f"p{i}" for i in range(60)]
    train = pd.DataFrame({"prompt_id": ids * 2, "model": ["a"] * 60 + ["b"] * 60, "score": 1.0,
                          "prompt_index": list(range(60)) * 2})
    calls = []

    def build(rows):
        calls.append(len(rows))
        return _Fake({ids[i] for i in rows.prompt_index})

    tasks = [TaskPrediction(task="general", confidence=1.0, source="t")] * 60
    P = out_of_fold_quality(build, train, ids, ids, tasks, np.zeros((60, 1)), ["a", "b"], folds=5)
    assert P.shape == (60, 2) and (P == 0).all()
    assert len(calls) == 5 and sum(calls) == 4 * len(train)  # each row in the training part of 4 folds


def test_calibration_applies_and_round_trips(tmp_path):
    cat = ModelCatalog.from_dict(CATALOG)
    qm = LearnedQualityModel(cat, {}, {}, calibration={"a": (0.5, 0.0)})
    q = qm.calibrate(np.array([[0.9, 0.9], [0.1, 0.1]]), ["a", "b"])
    assert q[:, 1].tolist() == [0.9, 0.1]  # b has no calibration
    assert q[0, 0] == pytest.approx(1 / (1 + np.exp(-0.5 * np.log(9)))) and q[1, 0] == pytest.approx(1 - q[0, 0])
    again = Router.load(Router(cat, quality_model=qm).save(tmp_path / "r")).quality_model
    assert isinstance(again, LearnedQualityModel) and again.calibration == {"a": (0.5, 0.0)}

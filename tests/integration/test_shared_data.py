"""The shared data (``router.config.shared_data_dir()``: ``$ROUTER_SHARED_DATA``, else
``../shared/data`` beside the project), read as training and evaluation read it. Skipped, naming
the folder, when it is absent."""

import glob

import numpy as np
import pytest

from router import Router
from router.config import shared_data_dir
from router.tasks.taxonomy import TASK_TYPES
from router.training.data.datasets import default_task_files, load_labelled

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shared():
    folder = shared_data_dir()
    if not (folder / "prompts").is_dir():
        pytest.skip(f"no shared data at {folder} (set ROUTER_SHARED_DATA to run these)")
    return folder


def test_labelled_prompts_load_with_known_tasks_and_the_regex_beats_chance_on_them(shared):
    files = default_task_files(shared)
    assert shared / "prompts" / "labelled_train.jsonl" in files
    ds = load_labelled([p for p in files if p.parent == shared / "prompts"])
    assert len(ds) >= 9000 and set(ds.tasks) <= set(TASK_TYPES)
    pool = load_labelled([shared / "prompts" / "labelled_pool.jsonl"])
    preds = np.array([t.task for t in Router.default().classify(pool.prompts)])
    accuracy = float((preds == np.array(pool.tasks)).mean())
    assert 1 / len(set(pool.tasks)) < accuracy < 0.9  # better than chance, far from solved


def test_routerbench_outcomes_read_into_models_with_scores(shared):
    from router.training.data.outcomes import read_outcomes

    files = sorted(glob.glob(str(shared / "outcomes" / "routerbench" / "*_train.csv")))
    if not files:
        pytest.skip(f"no RouterBench outcomes under {shared / 'outcomes'}")
    df = read_outcomes(files[:1])
    assert df.model.nunique() >= 2 and df.score.between(0, 1).all() and df.prompt_id.nunique() > 100

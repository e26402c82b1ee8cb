from pathlib import Path
import json

import pytest

from router import DataError
from router.training.data.datasets import load_labelled, load_overrides


def write(tmp_path, name, rows):
    p = tmp_path / name
    p.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return p


GOOD = {"prompt": "write a haiku", "task": "creative", "source": "mine"}


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"task": "code"}, "missing 'prompt'"),
        ({"prompt": "   ", "task": "code"}, "empty"),
        ({"prompt": 3, "task": "code"}, "empty or not a string"),
        ({"prompt": "x", "task": "poetry"}, "unknown task label 'poetry'"),
        ({"prompt": "x"}, "unknown task label None"),
        ({"prompt": "x", "task": "code", "difficulty": "brutal"}, "unknown difficulty"),
        ("{not json", "invalid JSON"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, bad, message):
    p = write(tmp_path, "d.jsonl", [GOOD, bad])
    with pytest.raises(DataError) as err:
        load_labelled([p])
    assert f"{p}:2:" in str(err.value) and message in str(err.value)


def test_missing_file_and_empty_set(tmp_path):
    with pytest.raises(DataError, match="no such data file"):
        load_labelled([tmp_path / "nope.jsonl"])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="empty"):
        load_labelled([empty])


def test_counts_weights_dedup_and_overrides(tmp_path):
    p = write(tmp_path, "d.jsonl", [
        GOOD, GOOD,
        {"id": "a1", "prompt": "is 7 prime?", "task": "qa", "label_confidence": "low"},
        {"id": "a2", "prompt": "hello", "task": "qa", "label_confidence": "low"},
        {"prompt": "2+2", "task": "math", "source": "t0:arith", "difficulty": "easy"},
    ])
    ds = load_labelled([p], overrides={"a2": "general"})
    assert len(ds) == 4  # the duplicate is kept once
    assert ds.class_counts()["creative"] == 1 and ds.class_counts()["general"] == 1
    by_id = {r.id: r for r in ds.rows}
    assert by_id["a1"].weight == 0.5 and by_id["a2"].weight == 1.0 and by_id["a2"].task == "general"
    assert ds.rows[0].source == "mine" and by_id["a1"].source == "d"  # file stem when absent
    assert {r.collection for r in ds.rows} == {"mine", "d", "t0"}
    assert ds.files[0]["rows"] == 5 and len(ds.files[0]["sha256"]) == 64
    assert "4 prompts" in ds.summary()


def test_override_file_validation(tmp_path):
    p = write(tmp_path, "r.jsonl", [{"id": "a", "task": "code"}, {"id": "b", "task": "magic"}])
    with pytest.raises(DataError, match=r"r.jsonl:2: unknown task label 'magic'"):
        load_overrides([p])


def test_project_data_files_are_valid():
    """Every labelled file the project ships loads cleanly and covers every task."""
    PROJECT_ROOT = Path(__file__).resolve().parents[2]
    from router.tasks.taxonomy import TEXT_TASK_TYPES

    files = sorted((PROJECT_ROOT / "data" / "prompts").glob("*.jsonl"))
    assert files
    ds = load_labelled(files)
    counts = ds.class_counts()
    assert all(counts[t] >= 30 for t in TEXT_TASK_TYPES), counts
    assert sum(1 for r in ds.rows if r.lang and r.lang != "en") >= 500

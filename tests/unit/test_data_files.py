"""The project's own data files: valid rows, one collection per file, every collection evaluated,
documented in data/README.md, and the promotion gate's prompts never used for training."""

import json
import re
from pathlib import Path

import pytest

from router.training.data.datasets import load_labelled

PROJECT_ROOT = Path(__file__).resolve().parents[2]
from router.training.fit.tasks import REAL_COLLECTIONS

DATA = PROJECT_ROOT / "data"
PROMPT_FILES = sorted((DATA / "prompts").glob("*.jsonl"))


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def test_there_are_prompt_files():
    assert len(PROMPT_FILES) >= 10


@pytest.mark.parametrize("path", PROMPT_FILES, ids=lambda p: p.name)
def test_prompt_file_is_one_valid_collection(path):
    ds = load_labelled([path])  # validates every row (labels, difficulty, JSON), naming file:line
    rows = _rows(path)
    assert len(ds) == len(rows), "a prompt appears twice in the file"
    ids = [r["id"] for r in rows]
    assert ids == [f"{path.stem}:{i:04d}" for i in range(1, len(rows) + 1)]
    assert {r["source"] for r in rows} == {path.stem}
    assert path.stem in REAL_COLLECTIONS, "every own collection is held out in leave-source-out"
    if "multilingual" in path.stem:
        assert all(re.fullmatch(r"[a-z]{2}", r.get("lang") or "") for r in rows), "multilingual rows need lang"


def test_no_prompt_is_in_two_files():
    seen: dict[str, str] = {}
    for path in PROMPT_FILES:
        for r in _rows(path):
            key = _norm(r["prompt"])
            assert key not in seen or seen[key] == path.name, f"{r['id']} repeats a prompt of {seen[key]}"
            seen[key] = path.name


def test_gate_prompts_are_never_trained_on():
    gate = {_norm(r["prompt"]) for r in _rows(DATA / "eval" / "gate_tasks.jsonl")}
    assert len(gate) >= 300
    for path in PROMPT_FILES:
        leaked = [r["id"] for r in _rows(path) if _norm(r["prompt"]) in gate]
        assert not leaked, f"gate prompts in training data: {leaked[:5]}"


def test_readme_documents_every_file_and_the_class_counts():
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    for path in PROMPT_FILES:
        assert f"`prompts/{path.name}`" in readme, f"{path.name} is not described in data/README.md"
    ds = load_labelled(PROMPT_FILES)
    m = re.search(r"Class counts of the project's own training files.*?\((\d[\d,]*) prompts", readme, re.S)
    assert m, "data/README.md lost its class-count line"
    assert int(m.group(1).replace(",", "")) == len(ds)

"""Labelled-prompt datasets: loading with validation, class counts, default file discovery."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...config import project_dir, shared_data_dir
from ...errors import DataError
from ...persistence.checks import hash_file

from .jsonl import iter_objects
from ...tasks.taxonomy import TEXT_TASK_TYPES

__all__ = [
    "LabelledPrompt",
    "LabelledSet",
    "load_labelled",
    "load_overrides",
    "default_overrides",
    "default_task_files",
    "shared_data_dir",
    "DIFFICULTY_SCORES",
]

#: Difficulty labels -> complexity score in [0, 1].
DIFFICULTY_SCORES = {"very_easy": 0.1, "easy": 0.25, "medium": 0.5, "hard": 0.75, "very_hard": 0.9}


@dataclass(frozen=True)
class LabelledPrompt:
    prompt: str
    task: str
    source: str
    difficulty: str | None = None
    weight: float = 1.0
    id: str = ""
    lang: str | None = None

    @property
    def collection(self) -> str:
        """The source collection (``t0:xsum_summary`` -> ``t0``): the unit held out in evaluation."""
        return self.source.split(":")[0]


@dataclass
class LabelledSet:
    rows: list[LabelledPrompt]
    files: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def prompts(self) -> list[str]:
        return [r.prompt for r in self.rows]

    @property
    def tasks(self) -> list[str]:
        return [r.task for r in self.rows]

    def class_counts(self) -> dict[str, int]:
        c = Counter(self.tasks)
        return {t: c.get(t, 0) for t in TEXT_TASK_TYPES}

    def collections(self) -> dict[str, int]:
        return dict(Counter(r.collection for r in self.rows).most_common())

    def summary(self) -> str:
        counts = ", ".join(f"{t} {n}" for t, n in self.class_counts().items())
        return f"{len(self)} prompts from {len(self.files)} file(s): {counts}"


def load_overrides(paths: Iterable[str | Path]) -> dict[str, str]:
    """Label corrections from hand review: JSONL rows ``{"id", "task", ...}`` -> {id: task}."""
    out: dict[str, str] = {}
    for p in paths:
        path = Path(p)
        for line_no, obj in iter_objects(path, "review file"):
            if not isinstance(obj.get("id"), str):
                raise DataError("review row needs a string 'id'", path=str(path), line=line_no)
            if obj.get("task") not in TEXT_TASK_TYPES:
                raise DataError(f"unknown task label {obj.get('task')!r}", path=str(path), line=line_no)
            out[obj["id"]] = obj["task"]
    return out


def load_labelled(
    paths: Iterable[str | Path],
    *,
    low_confidence_weight: float = 0.5,
    overrides: dict[str, str] | None = None,
) -> LabelledSet:
    """Read JSONL files of ``{"prompt", "task", "source"?, "difficulty"?, ...}`` rows.

    Raises :class:`DataError` naming file and line for invalid JSON, a missing or empty prompt,
    an unknown task label or an unknown difficulty. Rows marked ``label_confidence: low`` get
    ``low_confidence_weight``, unless ``overrides`` (id -> task, from hand review) relabels
    them, which also restores full weight. Exact duplicate (prompt, task) rows are kept once.
    """
    overrides = overrides or {}
    rows: list[LabelledPrompt] = []
    files = []
    seen: set[tuple[str, str]] = set()
    for p in paths:
        path = Path(p)
        n = 0
        for line_no, obj in iter_objects(path):
            prompt = obj.get("prompt")
            if prompt is None:
                raise DataError("missing 'prompt'", path=str(path), line=line_no)
            if not isinstance(prompt, str) or not prompt.strip():
                raise DataError("'prompt' is empty or not a string", path=str(path), line=line_no)
            task = obj.get("task")
            row_id = str(obj.get("id", f"{path.stem}:{line_no}"))
            reviewed = row_id in overrides
            if reviewed:
                task = overrides[row_id]
            if task not in TEXT_TASK_TYPES:
                raise DataError(f"unknown task label {task!r}; known: {list(TEXT_TASK_TYPES)}",
                                path=str(path), line=line_no)
            diff = obj.get("difficulty")
            if diff is not None and diff not in DIFFICULTY_SCORES:
                raise DataError(f"unknown difficulty {diff!r}; known: {list(DIFFICULTY_SCORES)}",
                                path=str(path), line=line_no)
            key = (prompt, task)
            n += 1
            if key in seen:
                continue
            seen.add(key)
            low = obj.get("label_confidence") == "low" and not reviewed
            weight = low_confidence_weight if low else 1.0
            rows.append(LabelledPrompt(
                prompt=prompt, task=task, source=str(obj.get("source") or path.stem), difficulty=diff,
                weight=weight, id=row_id, lang=obj.get("lang"),
            ))
        files.append({"path": str(path), "rows": n, "sha256": hash_file(path).hexdigest()})
    if not rows:
        raise DataError("the training set is empty", path=", ".join(str(p) for p in paths) or "(no files)")
    return LabelledSet(rows, files)


def default_overrides() -> dict[str, str]:
    """Every hand-review file in ``data/label_review/``."""
    return load_overrides(sorted((project_dir() / "data" / "label_review").glob("*.jsonl")))


def default_task_files(shared: Path | None, *, required: bool = False) -> list[Path]:
    """The project's own labelled prompts (``data/prompts/*.jsonl``), plus the shared labelled
    files when ``../shared/data`` exists. ``required``: raise :class:`DataError` naming the
    places searched when there are none."""
    own_dir = project_dir() / "data" / "prompts"
    own = sorted(own_dir.glob("*.jsonl"))
    shared_files = () if shared is None else (shared / "prompts" / "labelled_train.jsonl",
                                              shared / "prompts" / "labelled_pool.jsonl")
    extra = [p for p in shared_files if p.is_file()]
    if required and not (own or extra):
        searched = [f"{own_dir}/*.jsonl"] + [str(p) for p in shared_files]
        raise DataError(f"no labelled prompts: none of {', '.join(searched)} exists; run in the project "
                        "folder (or set ROUTER_PROJECT_DIR / ROUTER_SHARED_DATA) or pass the files")
    return [*extra, *own]

"""The task head in ``router retrain``: refit it where feedback carries task labels.

Labels: the ``task`` of the training feedback rows (imported outcomes, or feedback on a logged
request that names the request's true task), kept when it is one of ``TEXT_TASK_TYPES`` (a
``vision`` label says nothing about text); one label per (prompt, task), weighted by its origin's
training weight (the best weight when several origins agree). Each origin is its own collection
(``feedback:<origin>``), so the fitter balances it against the base's collections.

* BASE has a learned classifier: refit with :func:`~router.training.fit.tasks.fit_task_classifier`
  on the base's labelled files (``--data``, else the files the base names) plus the feedback
  labels, with the base's embedder, head, head parameters, weight power and confidence gate. When
  the base's files cannot be found, the feedback labels alone are used if they are enough (see
  below); otherwise the base's head is kept and the report says why.
* BASE is the cold-start (regex) classifier: a learned head is fitted from the feedback labels
  (plus ``--data`` when given) on the chosen embedder, when they are enough.

Enough: at least two tasks with :data:`MIN_LABELS_PER_TASK` distinct labelled prompts each. With
fewer, a head fitted on feedback alone would learn a handful of prompts by heart and answer with
their tasks everywhere; keeping the base's answers is the safer default.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ...tasks.classifier import LearnedTaskClassifier
from ...tasks.taxonomy import TEXT_TASK_TYPES

__all__ = ["MIN_LABELS_PER_TASK", "TaskLabels", "task_labels", "refit_task_head", "task_head_change"]

#: Distinct labelled prompts a task needs (two tasks at least) to fit a head on feedback alone.
MIN_LABELS_PER_TASK = 20


@dataclass
class TaskLabels:
    """Feedback task labels: ``rows`` (``LabelledPrompt``), ``by_origin`` (labels per origin),
    ``not_text`` (labels outside ``TEXT_TASK_TYPES``, left out)."""

    rows: list = field(default_factory=list)
    by_origin: dict[str, int] = field(default_factory=dict)
    not_text: int = 0

    def per_task(self) -> dict[str, int]:
        return dict(Counter(r.task for r in self.rows))

    def enough(self, n: int = MIN_LABELS_PER_TASK) -> bool:
        return sum(c >= n for c in self.per_task().values()) >= 2


def task_labels(fb: pd.DataFrame) -> TaskLabels:
    """Training feedback rows (``router.training.loop.rows`` frame) -> their task labels."""
    from ..data.datasets import LabelledPrompt

    out = TaskLabels()
    if fb.empty or "task" not in fb:
        return out
    lab = fb[fb.task.notna() & (fb.weight > 0)]
    text = lab[lab.task.isin(TEXT_TASK_TYPES)]
    out.not_text = int(len(lab) - len(text))
    best = text.sort_values("weight", ascending=False).drop_duplicates(["prompt", "task"])
    for r in best.itertuples(index=False):
        out.rows.append(LabelledPrompt(prompt=r.prompt, task=r.task, source=f"feedback:{r.origin}",
                                       weight=float(r.weight), id=f"feedback:{r.prompt_id}"))
    out.by_origin = dict(Counter(r.source.split(":", 1)[1] for r in out.rows))
    return out


def _base_files(clf: Any, data: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """The labelled files to refit on: ``data``, else the base's named files -> (found, missing)."""
    if data:
        files = [Path(p) for p in data]
    else:
        files = [Path(f["path"] if isinstance(f, dict) else f) for f in clf.metadata.get("data_files") or []]
    return [f for f in files if f.is_file()], [str(f) for f in files if not f.is_file()]


def refit_task_head(base_clf: Any, labels: TaskLabels, *, data: Sequence[Path] = (), embedder: Any = None,
                    say: Callable[[str], None] = lambda s: None) -> tuple[Any | None, dict[str, Any]]:
    """-> (the refitted classifier or ``None`` to keep the current path, a report).

    ``embedder`` None: ``base_clf`` is learned and is refitted on its own embedder; else a head
    is fitted afresh on ``embedder`` (cold start). ``data``: labelled files (``--data``)."""
    from ..data.datasets import LabelledSet, default_overrides, load_labelled
    from ..fit.tasks import fit_task_classifier

    info: dict[str, Any] = {"labels_by_origin": labels.by_origin, "labels_per_task": labels.per_task(),
                            "labels_not_text": labels.not_text, "refit": False}
    if not labels.rows:
        info["reason"] = "no feedback carries a task label: the task head is the base's"
        return None, info
    learned = embedder is None  # refit the base's learned head on its own embedder
    found, missing = _base_files(base_clf, data) if learned else ([Path(p) for p in data], [])
    if learned and not data and not base_clf.metadata.get("data_files"):
        missing = ["(the base names no labelled files; pass --data)"]
    if missing:
        say(f"task head: labelled file(s) not found: {', '.join(missing)}")
        info["missing_files"] = missing
    base_ds = load_labelled(found, overrides=default_overrides()) if found else None
    if (base_ds is None or missing) and not labels.enough():
        need = f"at least two tasks with {MIN_LABELS_PER_TASK} labelled prompts each"
        why = "the base's labelled data is missing and " if learned else ""
        info["reason"] = (f"{why}the feedback labels {labels.per_task()} are too few to fit on alone ({need}): "
                          "the base's task head is kept")
        say(f"task head: {info['reason']}")
        return None, info
    ds = LabelledSet((base_ds.rows if base_ds else []) + labels.rows, (base_ds.files if base_ds else []))
    info["base_labelled_rows"] = len(base_ds) if base_ds else 0
    if learned:
        meta = base_clf.metadata
        say(f"task head: refitting on {info['base_labelled_rows']} labelled prompts + {len(labels.rows)} "
            f"feedback labels with {base_clf.embedder.name} ...")
        clf = fit_task_classifier(ds, base_clf.embedder, head=meta.get("head", "logreg"),
                                  head_params=meta.get("head_params") or {"C": 1.0},
                                  threshold=base_clf.threshold, weight_power=meta.get("weight_power", 0.75),
                                  progress=say)
        kept = {k: v for k, v in meta.items() if k in ("embedder_spec", "data_files")}
        clf.metadata.update(kept)
    else:
        say(f"task head: fitting a learned head on {len(labels.rows)} feedback labels"
            f"{f' + {len(base_ds)} labelled prompts' if base_ds else ''} with {embedder.name} ...")
        clf = fit_task_classifier(ds, embedder, threshold=None, progress=say)
        if base_ds is not None:
            clf.metadata["data_files"] = base_ds.files
    clf.metadata["feedback_task_labels"] = labels.by_origin
    info["refit"] = True
    return clf, info


def task_head_change(base_clf: Any, clf: Any, X: Any, texts: list[str], tasks: list,
                     labels: TaskLabels) -> dict[str, Any]:
    """How the candidate's task answers differ from the base's on the training prompts ``texts``
    (``X``: the candidate's features, ``tasks``: its predictions), and both accuracies on the
    feedback-labelled prompts."""
    same_body = isinstance(base_clf, LearnedTaskClassifier) and base_clf.embedder is clf.embedder
    before = base_clf.predict_features(X, texts) if same_body else base_clf.predict(texts)
    now = {t: p.task for t, p in zip(texts, tasks)}
    was = {t: p.task for t, p in zip(texts, before)}
    out: dict[str, Any] = {"predictions_changed": int(sum(now[t] != was[t] for t in texts))}
    labelled = [r for r in labels.rows if r.prompt in now]
    if labelled:
        out["labelled_accuracy"] = {"base": round(sum(was[r.prompt] == r.task for r in labelled) / len(labelled), 4),
                                    "candidate": round(sum(now[r.prompt] == r.task for r in labelled) / len(labelled), 4)}
    return out

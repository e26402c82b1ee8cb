"""Task-classifier evaluation: leave-source-out accuracy, macro-F1, per class, per collection,
the non-English slice, and the regex classifier on the same rows; a confusion-matrix PNG."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...tasks.taxonomy import RegexTaskClassifier

from ..data.datasets import LabelledSet
from ..fit.tasks import LosoResult, choose_threshold, leave_source_out, make_head
from ...tasks.taxonomy import TEXT_TASK_TYPES

__all__ = ["classification_metrics", "evaluate_heads", "plot_confusion"]


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class precision/recall/F1/support."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        return {"n": 0}
    present = [lab for lab in labels if (y_true == lab).any()]
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=present, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)), 4),
        "per_class": {lab: {"precision": round(float(a), 4), "recall": round(float(b), 4), "f1": round(float(c), 4),
                            "support": int(d)} for lab, a, b, c, d in zip(present, p, r, f, s)},
    }


def plot_confusion(y_true, y_pred, labels: Sequence[str], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y_true, y_pred, labels=list(labels))
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(8, 7))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if cm[i, j]:
                ax.text(j, i, cm[i, j], ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _slice_metrics(ds: LabelledSet, res: LosoResult, final: np.ndarray, regex: np.ndarray, labels) -> dict:
    rows = [ds.rows[i] for i in res.index]
    coll = np.array([r.collection for r in rows])
    non_en = np.array([bool(r.lang) and r.lang != "en" for r in rows])
    out = {"per_collection": {}, "non_english": {}}
    for c in res.collections:
        m = coll == c
        out["per_collection"][c] = {"n": int(m.sum()), "accuracy": round(float((final[m] == res.y_true[m]).mean()), 4),
                                    "regex_accuracy": round(float((regex[m] == res.y_true[m]).mean()), 4)}
    if non_en.any():
        out["non_english"] = classification_metrics(res.y_true[non_en], final[non_en], labels)
        out["non_english"]["regex_accuracy"] = round(float((regex[non_en] == res.y_true[non_en]).mean()), 4)
        out["non_english"]["predicted_translation_share"] = round(float((final[non_en] == "translation").mean()), 4)
        out["non_english"]["true_translation_share"] = round(float((res.y_true[non_en] == "translation").mean()), 4)
        out["english"] = classification_metrics(res.y_true[~non_en], final[~non_en], labels)
    return out


def evaluate_heads(
    ds: LabelledSet,
    X: np.ndarray,
    heads: Sequence[tuple[str, dict[str, Any]]],
    *,
    collections: Sequence[str] | None = None,
    weight_power: float = 0.75,
    out_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Leave-source-out evaluation of each (head name, params) on the feature matrix X (n, d)."""
    say = progress or (lambda s: None)
    labels = list(TEXT_TASK_TYPES)
    report: dict[str, Any] = {"rows": len(ds), "collections": ds.collections(), "heads": {}}
    regex_all = None
    for name, params in heads:
        key = name + "".join(f" {k}={v}" for k, v in sorted(params.items()))
        say(f"leave-source-out: {key}")
        res = leave_source_out(ds, X, lambda: make_head(name, **params), collections,
                               weight_power=weight_power, progress=progress)
        if regex_all is None:
            regex_all = np.array([p.task for p in RegexTaskClassifier().predict([ds.rows[i].prompt for i in res.index])])
            report["regex"] = classification_metrics(res.y_true, regex_all, labels)
        gate = choose_threshold(res, regex_all)
        final = np.where(res.confidence < gate, regex_all, res.y_pred)
        entry = {
            "learned_only": classification_metrics(res.y_true, res.y_pred, labels),
            "gate": gate,
            "gated": classification_metrics(res.y_true, final, labels),
            "seconds": round(res.seconds, 1),
        }
        entry.update(_slice_metrics(ds, res, final, regex_all, labels))
        report["heads"][key] = entry
        say(f"  {key}: accuracy {entry['gated']['accuracy']:.3f}, macro-F1 {entry['gated']['macro_f1']:.3f}"
            f" (regex {report['regex']['accuracy']:.3f})")
        if out_dir is not None:
            safe = key.replace(" ", "_").replace("=", "")
            entry["confusion_png"] = str(plot_confusion(res.y_true, final, labels, out_dir / f"confusion_{safe}.png",
                                                        f"{key}: leave-source-out"))
    if report["heads"]:
        best = max(report["heads"], key=lambda k: report["heads"][k]["gated"]["accuracy"])
        report["best_head"] = best
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "task_eval.json").write_text(json.dumps(report, indent=2))
    return report

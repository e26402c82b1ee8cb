"""``router retrain``: refit a router's quality and cost heads from the usage log, evaluate the
candidate off-policy against its base on the newest feedback, and write it.

The candidate folder is always written; the gate decides promotion (and the command's exit code),
not whether the candidate is saved. Steps:

1. outcome rows from the log (:func:`~router.training.loop.rows.outcome_rows`) plus the base's
   training outcomes (``outcomes``, else the files the base names; a missing one is an error);
2. a time-ordered split: the newest ``holdout`` share of feedback contexts is held back;
3. the task classifier: refitted where the training feedback carries task labels
   (:mod:`router.training.loop.taskhead`); otherwise the base's learned one (same embedder), else one fitted on ``data``
   (labelled prompts), else an embedder-carrying head fitted on the base classifier's own labels
   whose threshold keeps the base's (regex) answers: the task predictions stay the base's while
   the quality and cost heads read the embedding;
4. quality and cost heads by the project's trainer (:mod:`router.training.fit.quality`), rows
   weighted by origin, models with little feedback shrunk to their catalog priors;
5. the gate (:mod:`router.training.loop.offpolicy`, :mod:`router.learning.gate`).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...errors import DataError
from ...routing import Router
from ..data.outcomes import read_outcomes
from .offpolicy import context_key, evaluate_candidate
from .rows import DEFAULT_ORIGIN_WEIGHTS, EXTRA, outcome_rows
from .taskhead import TaskLabels, refit_task_head, task_head_change, task_labels

__all__ = ["RetrainConfig", "RetrainResult", "retrain"]


@dataclass
class RetrainConfig:
    usage_db: str
    base: str
    out: Path
    since: float | None = None
    outcomes: Sequence[Path] = ()
    data: Sequence[Path] = ()
    embedder: str | None = None  # None: the base's (learned) or the project's default spec
    cache: str | None = None
    holdout: float = 0.2
    origin_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_ORIGIN_WEIGHTS))
    quality_head: str = "logreg"
    quality_C: float = 0.1
    shrinkage: float = 50.0
    cost_tolerance: float = 0.0
    min_ess: float = 10.0
    sample: int | None = None  # keep about this many feedback rows (per (task, model) stratum, weighted)
    seed: int = 0
    chunk_size: int = 5000


@dataclass
class RetrainResult:
    path: Path
    candidate: Router
    promote: bool
    reasons: list[str]
    report: dict[str, Any]


def _base_outcomes(cfg: RetrainConfig, base: Router, say: Callable[[str], None]) -> pd.DataFrame:
    files = [Path(p) for p in cfg.outcomes]
    if not files:
        named = getattr(base.quality_model, "metadata", {}).get("outcome_files") or []
        for f in named:
            if not Path(f).is_file():
                raise DataError(f"the base router was trained on {f}, which is missing; pass --outcomes "
                                "(or an empty set with --outcomes none)", path=str(f))
        files = [Path(f) for f in named]
    files = [f for f in files if str(f) != "none"]
    if not files:
        return pd.DataFrame(columns=["prompt_id", "prompt", "model", "score", "cost", "prompt_tokens",
                                     "completion_tokens", "source"] + EXTRA)
    df = read_outcomes(files)
    df = df[df.model.isin(base.models)]
    say(f"base training outcomes: {len(df)} rows from {len(files)} file(s)")
    return df.assign(weight=1.0, origin="base", propensity=None, created_at=-math.inf, request_id=None, task=None)


def _split(fb: pd.DataFrame, holdout: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold back the newest ``holdout`` share of feedback contexts (by their latest time)."""
    if fb.empty or holdout <= 0:
        return fb, fb.iloc[0:0]
    ctx = context_key(fb)
    order = fb.assign(ctx=ctx, pos=np.arange(len(fb))).groupby("ctx").agg(t=("created_at", "max"),
                                                                          pos=("pos", "max"))
    order = order.sort_values(["t", "pos"])
    n_hold = int(round(len(order) * holdout))
    held = set(order.index[len(order) - n_hold:])
    mask = ctx.isin(held)
    return fb[~mask], fb[mask]


def _classifier(cfg: RetrainConfig, base: Router, texts: list[str], labels: TaskLabels,
                say: Callable[[str], None]):
    """-> (classifier, how it was made, the task-head report, the features of ``texts`` when
    making the classifier embedded them already, else ``None``)."""
    from ...embedders import make_embedder, with_cache
    from ...tasks.classifier import LearnedTaskClassifier, featurize
    from ..fit.train import DEFAULT_EMBEDDER_SPEC

    clf = base.classifier
    if isinstance(clf, LearnedTaskClassifier) and cfg.embedder is None:
        clf.embedder = with_cache(clf.embedder, cfg.cache)
        new, info = refit_task_head(clf, labels, data=cfg.data, say=say)
        if new is not None:
            return new, "base refitted with feedback task labels", info, None
        say(f"task classifier: the base's ({clf.embedder.name})")
        return clf, "base", info, None
    spec = cfg.embedder or DEFAULT_EMBEDDER_SPEC
    embedder = with_cache(make_embedder(spec), cfg.cache)
    new, info = refit_task_head(clf, labels, data=cfg.data, embedder=embedder, say=say)
    if new is not None:
        new.metadata["embedder_spec"] = spec
        return new, "fitted on feedback task labels", info, None
    if cfg.data:
        from ..data.datasets import default_overrides, load_labelled
        from ..fit.tasks import fit_task_classifier

        ds = load_labelled(list(cfg.data), overrides=default_overrides())
        say(f"task classifier: fitting on {len(ds)} labelled prompts with {embedder.name} ...")
        return fit_task_classifier(ds, embedder, progress=say), "labelled data", info, None
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    say(f"task classifier: {embedder.name} carrying the base's task answers ...")
    X = featurize(embedder, texts, show_progress=sys.stderr.isatty())
    y = np.array([p.task for p in base.classifier.predict(texts)])
    head = LogisticRegression(C=1.0, max_iter=2000) if len(set(y)) > 1 else DummyClassifier(strategy="prior")
    head.fit(X, y)
    clf = LearnedTaskClassifier(embedder, head, threshold=1.01, metadata={
        "note": "fitted on the base classifier's labels; threshold above 1 keeps the base's (regex) answers",
        "embedder_spec": spec})
    return clf, "base answers + embedder", info, X


def retrain(cfg: RetrainConfig, progress: Callable[[str], None] | None = None) -> RetrainResult:
    from ...predictors.learned import cost_features, quality_features
    from ...serving.usage.store import UsageStore
    from ...tasks.classifier import featurize
    from ...text.request import estimate_tokens
    from ..fit.quality import build_cost_model, build_quality_model

    say = progress or (lambda s: None)
    t0 = time.perf_counter()
    if not 0.0 <= cfg.holdout < 1.0:
        raise DataError(f"holdout must be in [0, 1), got {cfg.holdout}")
    base = Router.load(cfg.base)
    stages: dict[str, dict[str, float]] = {}

    def stage(name: str, rows: int, t: float) -> None:
        dt = time.perf_counter() - t
        stages[name] = {"rows": int(rows), "seconds": round(dt, 3), "rows_per_s": round(rows / dt, 1) if dt > 0 else None}
        say(f"stage {name}: {rows} rows in {dt:.2f}s ({rows / max(dt, 1e-9):,.0f} rows/s)")

    t = time.perf_counter()
    with UsageStore(cfg.usage_db) as store:
        fb, rows_rep = outcome_rows(store, base.models, since=cfg.since, origin_weights=cfg.origin_weights,
                                    sample=cfg.sample, seed=cfg.seed, chunk_size=cfg.chunk_size)
    stage("read_log", rows_rep.feedback_rows, t)
    if rows_rep.sampled:
        say(f"sampled {rows_rep.sampled['kept']} of {rows_rep.sampled['of']} usable rows over "
            f"{rows_rep.sampled['strata']} (task, model) strata (--sample {cfg.sample}; weights compensate)")
    say(f"feedback: {rows_rep.feedback_rows} rows, {rows_rep.used} usable "
        f"({', '.join(f'{k} {v}' for k, v in sorted(rows_rep.by_origin.items())) or 'none'}); "
        f"{rows_rep.hash_only} unusable (prompt stored as a hash only)")
    if rows_rep.unknown_models:
        say(f"left out: feedback for models not in the base's catalog: {rows_rep.unknown_models}")
    base_rows = _base_outcomes(cfg, base, say)
    train_fb, held = _split(fb, cfg.holdout)
    train = pd.concat([base_rows, train_fb], ignore_index=True) if len(base_rows) else train_fb.copy()
    if train.empty:
        raise DataError(f"no usable feedback in {store.url} to retrain on "
                        f"({rows_rep.feedback_rows} feedback rows, {rows_rep.hash_only} hash-only)")
    say(f"training on {len(train)} rows ({train.prompt_id.nunique()} prompts); {len(held)} newest feedback "
        f"rows held back for the gate")
    uniq = train.drop_duplicates("prompt_id")[["prompt_id", "prompt"]].reset_index(drop=True)
    train = train.assign(prompt_index=train.prompt_id.map({p: i for i, p in enumerate(uniq.prompt_id)}))
    texts = [base.classifier_text(p) for p in uniq.prompt]  # what the router reads (few-shot dropped)
    labels = task_labels(train_fb)
    t = time.perf_counter()
    clf, clf_kind, task_info, X = _classifier(cfg, base, texts, labels, say)
    stage("task_classifier", len(texts), t)
    t = time.perf_counter()
    if X is None:  # the cold-start path embedded them already to fit its head
        say(f"embedding {len(texts)} unique prompts (of {len(train)} rows) ...")
        X = featurize(clf.embedder, texts, show_progress=sys.stderr.isatty())
    stage("embed", len(texts), t)
    t = time.perf_counter()
    tasks = clf.predict_features(X, texts)
    task_info.update(task_head_change(base.classifier, clf, X, texts, tasks, labels))
    say(f"task head: {'refitted' if task_info['refit'] else 'not refitted'}; task labels used per origin "
        f"{task_info['labels_by_origin'] or 'none'}; {task_info['predictions_changed']} of {len(texts)} "
        f"training prompts change task")
    views = len(clf.layout.views)  # the quality heads read the whole text only
    Z = quality_features(X, tasks, views)
    C = cost_features([estimate_tokens(p) for p in texts], X, tasks)
    qm = build_quality_model(base.catalog, train, Z, head=cfg.quality_head, C=cfg.quality_C,
                             shrinkage=cfg.shrinkage, text_views=views)
    cm = build_cost_model(base.catalog, train, C)
    stage("fit", len(train), t)
    qm.metadata.update({"retrained_from": str(cfg.base), "usage_db": store.url,
                        "feedback_rows": int(len(train_fb)), "origin_weights": dict(cfg.origin_weights),
                        "outcome_files": [str(p) for p in cfg.outcomes if str(p) != "none"]})
    candidate = Router(base.catalog, classifier=clf, quality_model=qm, cost_model=cm, policy=base.policy,
                       context_turns=base.context_turns)
    t = time.perf_counter()
    path = candidate.save(cfg.out)
    stage("write", 1, t)
    say(f"candidate written to {path} (whatever the gate says)")
    counts = qm.counts
    changed = {
        "task_classifier": clf_kind,
        "task_head": task_info,
        "quality_heads": {m: int(n) for m, n in sorted(counts.items())},
        "prior_weight": {m: round(cfg.shrinkage / (counts.get(m, 0) + cfg.shrinkage), 3) for m in base.models},
        "models_on_priors_only": [m for m in base.models if m not in counts],
        "cost_heads": sorted(cm.heads),
    }
    if held.empty:
        gate, info = None, {"held_back_rows": 0}
        promote, reasons = False, ["no feedback held back (holdout 0 or no feedback): nothing to gate on"]
    else:
        say(f"off-policy evaluation on {len(held)} held-back rows ...")
        t = time.perf_counter()
        gate, info = evaluate_candidate(held, base, candidate, cost_tolerance=cfg.cost_tolerance,
                                        min_ess=cfg.min_ess)
        stage("gate", len(held), t)
        promote, reasons = gate.promote, gate.reasons
    report = {"candidate": str(path), "base": str(cfg.base), "rows": rows_rep.to_dict(),
              "training_rows": int(len(train)), "base_training_rows": int(len(base_rows)),
              "changed": changed, "gate": {"verdict": "promote" if promote else "refuse", "reasons": reasons,
                                            "checks": gate.checks if gate else {}, **info},
              "stages": stages, "seconds": round(time.perf_counter() - t0, 2)}
    return RetrainResult(path, candidate, promote, reasons, report)

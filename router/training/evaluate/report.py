"""``router eval``: a trained router and its baselines on held-out outcome rows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...embedders import with_cache
from ...errors import DataError
from ...policy import eligibility
from ...progress import ProgressLike, as_progress, in_chunks
from ...routing import Router
from ...tasks.classifier import LearnedTaskClassifier
from ...text.request import parse_request
from ...types import QualityEstimate

from ..embedding import featurize_with_progress

from ..data.outcomes import read_outcomes
from .routing import (
    OutcomeMatrix,
    covered_models,
    evaluate_routing,
    id_bucket,
    knn_predictor,
    outcome_matrix,
    plot_cost_quality,
    split_outcomes,
    table_predictor,
    write_report,
)
from ...predictors.priors import CatalogCostModel

__all__ = ["run_eval"]


BASELINE_FOLDS = 5


def _subset(m: OutcomeMatrix, rows: np.ndarray) -> OutcomeMatrix:
    pick = np.flatnonzero(rows)
    return OutcomeMatrix([m.prompt_ids[i] for i in pick], [m.prompts[i] for i in pick],
                         [m.sources[i] for i in pick], m.models, m.quality[pick], m.cost[pick])


def _cross_fitted_baselines(data: OutcomeMatrix, X: np.ndarray, tasks: Sequence[str],
                            folds: int = BASELINE_FOLDS) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """kNN and per-task table predictions for every prompt of ``data``, each fold's from the
    other folds (folds by a hash of the prompt id), so a baseline never sees the prompt it routes."""
    fold = np.array([id_bucket(p, folds) for p in data.prompt_ids])
    out = {name: (np.zeros_like(data.quality), np.zeros_like(data.cost)) for name in ("knn", "task-table")}
    tasks = np.asarray(tasks)
    for k in range(folds):
        te, tr = fold == k, fold != k
        if not te.any():
            continue
        if not tr.any():
            raise DataError(f"need prompts in more than one of {folds} folds to cross-fit the baselines")
        train = _subset(data, tr)
        for name, (q, c) in (("knn", knn_predictor(X[tr], train, X[te], k=25)),
                             ("task-table", table_predictor(tasks[tr].tolist(), train, tasks[te].tolist()))):
            out[name][0][te], out[name][1][te] = q, c
    return out


def _predict(router: Router, prompts: Sequence[str], progress: ProgressLike) -> QualityEstimate:
    """``router.predict`` in chunks, each reported (bulk routing of thousands of prompts)."""
    parts = in_chunks(router.predict, list(prompts), progress, f"routing {len(prompts)} prompts")
    if not parts:
        return router.predict([])
    return QualityEstimate(models=parts[0].models, quality=np.vstack([p.quality for p in parts]),
                           cost=np.vstack([p.cost for p in parts]), tasks=tuple(t for p in parts for t in p.tasks))


def run_eval(
    router_path: str | Path,
    outcome_files: Sequence[Path],
    *,
    out_dir: Path,
    pair: tuple[str, ...] | None = None,
    validation_percent: int | None = 20,
    cache: str | Path | None = None,
    progress: ProgressLike = None,
) -> dict[str, Any]:
    say = as_progress(progress)
    router = Router.load(router_path)
    df = read_outcomes(outcome_files)
    unknown = sorted(set(df.model) - set(router.models))
    if unknown:
        say(f"ignoring {len(unknown)} outcome model(s) not in the router's catalog: {', '.join(unknown)}")
    df = df[df.model.isin(router.models)]
    if df.empty:
        raise DataError("none of the outcome models is in the router's catalog")
    if validation_percent is None:
        train, val = None, df
    else:
        train, val = split_outcomes(df, validation_percent)
    # models scored on (nearly) every held-out prompt; prompts missing one of them are dropped
    models = covered_models(val, router.models, "scored on >= 95% of the held-out prompts")
    test = outcome_matrix(val, models)
    if validation_percent is None:
        trainm = None  # the baselines are cross-fitted on test's own folds
        say(f"evaluating on all {len(test.prompts)} prompts x {len(models)} models (baselines "
            f"cross-fitted over {BASELINE_FOLDS} folds, so none sees the prompt it routes)")
    else:
        trainm = outcome_matrix(train, models)
        say(f"evaluating on {len(test.prompts)} held-out prompts x {len(models)} models "
            f"({len(trainm.prompts)} training prompts for the baselines)")
    cols = [router.models.index(m) for m in models]
    est = _predict(router, test.prompts, say)
    # where the data has no cost for a model, price the call with the catalog (prompt tokens +
    # expected output), the same estimate the router sees
    no_cost = val.groupby("model").cost.apply(lambda c: c.isna().all())
    catalog_cost = CatalogCostModel(router.catalog).predict_cost(
        [max(1, len(p) // 4) for p in test.prompts], est.tasks, models)
    for j, m in enumerate(models):
        if no_cost.get(m, False):
            test.cost[:, j] = catalog_cost[:, j]
    predictors = {"router": (est.quality[:, cols], est.cost[:, cols])}
    if isinstance(router.classifier, LearnedTaskClassifier):
        body = with_cache(router.classifier.embedder, cache)
        # the baselines read what the router reads (few-shot examples dropped)
        te_text = [router.classifier_text(p) for p in test.prompts]
        Xte = featurize_with_progress(body, te_text, say, f"embedding {len(test.prompts)} prompts for the baselines")
        te_tasks = [t.task for t in est.tasks]
        if trainm is None:  # same rows: fit each fold's baselines on the other folds
            predictors.update(_cross_fitted_baselines(test, Xte, te_tasks))
        else:
            tr_text = [router.classifier_text(p) for p in trainm.prompts]
            Xtr = featurize_with_progress(body, tr_text, say,
                                          f"embedding {len(trainm.prompts)} training prompts for the baselines")
            tr_tasks = [p.task for p in router.classifier.predict_features(Xtr, tr_text)]
            predictors["knn"] = knn_predictor(Xtr, trainm, Xte, k=25)
            predictors["task-table"] = table_predictor(tr_tasks, trainm, te_tasks)
    for name in ("knn", "task-table"):
        if name in predictors:  # baselines price unknown costs like the router does
            q, c = predictors[name]
            c = c.copy()
            for j, m in enumerate(models):
                if no_cost.get(m, False):
                    c[:, j] = catalog_cost[:, j]
            predictors[name] = (q, c)
    if pair is None:
        single_cost = test.cost.mean(0)
        pair = (models[int(np.argmax(single_cost))], models[int(np.argmin(single_cost))])
    # the models the router may pick per prompt (context window, vision), as it does when serving
    specs = [router.catalog[m] for m in models]
    ok = eligibility(np.array([parse_request(p).prompt_tokens for p in test.prompts]),
                     np.array([s.context_window for s in specs]), np.array([s.max_output_tokens for s in specs]),
                     require_vision=np.array([t.task == "vision" for t in est.tasks]),
                     vision=np.array([s.vision for s in specs]))
    unservable = ~ok.any(1)
    ok[unservable] = True  # the router would refuse these; score them over every model
    report = evaluate_routing(test, predictors, pair=tuple(pair), eligible=ok,
                              policies={"router": router.policy})
    report["unservable_prompts"] = int(unservable.sum())
    report["router_path"] = str(router_path)
    report["outcome_files"] = [str(p) for p in outcome_files]
    report["validation_percent"] = validation_percent
    report["report_json"] = str(out_dir / "routing_eval.json")
    report["plot_png"] = str(plot_cost_quality(report, out_dir / "cost_quality.png",
                                               f"{len(test.prompts)} held-out prompts"))
    write_report(report, out_dir / "routing_eval.json")
    return report

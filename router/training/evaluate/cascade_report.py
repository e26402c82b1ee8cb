"""``router eval --cascade``: a trained router's cascade on outcome rows with answers."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError
from ...predictors.answer_scorer import ANSWER_FEATURE_NAMES, answer_features
from ...routing import Router
from ..data.outcomes import read_outcomes
from ..fit.scorer import answer_rows
from .cascade import ScoreFn, evaluate_cascade
from .routing import covered_models, evaluate_routing, outcome_matrix, split_outcomes

__all__ = ["router_score_fn", "run_cascade_eval", "print_cascade_report"]


def router_score_fn(router: Router, prompts: Sequence[str], models: Sequence[str], precall: np.ndarray,
                    answers: Sequence[Sequence[str]]) -> ScoreFn:
    """A :data:`~router.training.evaluate.cascade.ScoreFn` over a fixed prompt set: the router's
    answer scorer (or, without one, what :meth:`Router.score_answers` falls back to: the pre-call
    prediction, 0 where the original checks fire). ``precall``: array (p, m) aligned with ``models``."""
    checks = [ANSWER_FEATURE_NAMES.index(c) for c in ("placeholder", "hedging")]

    def score(rows, cols, others):
        rows, cols = list(rows), list(cols)
        texts = [prompts[r] for r in rows]
        ans = [answers[r][c] for r, c in zip(rows, cols)]
        pre = precall[rows, cols]
        names = [models[c] for c in cols]
        if router.answer_scorer is not None:
            return router.answer_scorer.score(texts, ans, names, pre, others)
        F = answer_features(texts, ans, pre, others)
        return np.where((F[:, checks] > 0).any(1), 0.0, pre)

    return score


def run_cascade_eval(
    router_path: str | Path,
    outcome_files: Sequence[Path],
    *,
    out_dir: Path,
    validation_percent: int | None = 20,
    steps: Sequence[int] = (2, 3),
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Load the router, read the outcome files (rows with answers only), evaluate pre-call routing
    and the cascade on the held-out split (every row with ``validation_percent=None``) and write
    ``cascade_eval.json`` to ``out_dir``."""
    say = progress or (lambda s: None)
    router = Router.load(router_path)
    df = answer_rows(read_outcomes(outcome_files))
    if df.empty:
        raise DataError("none of the outcome files carries answers (a RouterBench model_response column or a "
                        "JSONL 'answer' field); --cascade needs them")
    df = df[df.model.isin(router.models)]
    if validation_percent is not None:
        df = split_outcomes(df, validation_percent)[1]
    models = covered_models(df, router.models, "answering >= 95% of the evaluated prompts")
    test = outcome_matrix(df, models)
    ans = df.pivot_table(index="prompt_id", columns="model", values="answer", aggfunc="first")
    ans = ans.reindex(index=test.prompt_ids, columns=models)
    answers = [["" if not isinstance(a, str) else a for a in row] for row in ans.itertuples(index=False)]
    say(f"cascade on {len(test.prompts)} prompts x {len(models)} models "
        f"({'every row' if validation_percent is None else f'held-out {validation_percent}%'}; "
        f"scorer: {'learned' if router.answer_scorer is not None else 'none, the original checks'})")
    cols = [router.models.index(m) for m in models]
    est = router.predict(test.prompts)
    pq, pc = est.quality[:, cols], est.cost[:, cols]
    routing = evaluate_routing(test, {"router": (pq, pc)})
    r = routing["routers"]["router"]
    precall_pts = [(p["cost"], p["quality"]) for mode in ("threshold", "gap") for p in r[mode]["curve"]]
    score = router_score_fn(router, test.prompts, models, pq, answers)
    report = evaluate_cascade(models, test.sources, pq, pc, test.quality, test.cost, answers, score,
                              precall_points=precall_pts, steps=steps)
    report["precall"]["aiq_threshold"] = r["threshold"]["aiq"]
    report["precall"]["aiq_gap"] = r["gap"]["aiq"]
    report.update({"router_path": str(router_path), "outcome_files": [str(p) for p in outcome_files],
                   "validation_percent": validation_percent, "scorer": router.answer_scorer is not None})
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "cascade_eval.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, default=float))
    tmp.replace(path)
    report["report_json"] = str(path)
    return report


def _pct(x) -> str:
    return "never" if x is None else f"{100 * x:.0f}%"


def print_cascade_report(report: dict[str, Any], *, as_json: bool = False) -> None:
    """Print the report: the whole JSON (curve points carry ``mean_cost_paid``, ``mean_quality``,
    ``mean_calls``) or a table of the curves' AIQ and GPT-4-parity points."""
    if as_json:
        print(json.dumps(report, indent=2, default=float))
        return
    b = report["best_single"]
    print(f"{report['prompts']} prompts, {len(report['models'])} models; best single model "
          f"{report['best_single_model']}: quality {b['mean_quality']:.4f} at {b['mean_cost_paid']:.6f} USD")
    o = report["oracle"]
    print(f"oracle: quality {o['mean_quality']:.4f} at {o['mean_cost_paid']:.6f} USD")
    for name in ("precall", "cascade", "cascade_agree", "agreement_bound", "perfect_verifier"):
        if name not in report:
            continue
        r = report[name]
        par = r["parity_point"]
        calls = f", {par['mean_calls']:.2f} sequential calls there" if par else ""
        print(f"{name:<17} AIQ {r['aiq']:.4f}  max quality {r['max_quality']:.4f}  reaches the best model's "
              f"quality at {_pct(r['cost_to_match_best_ratio'])} of its cost (hull), "
              f"{_pct(r['parity_cost_ratio'])} (one setting){calls}")
    print("scorer AUC: " + ", ".join(f"{k} {v:.3f}" for k, v in report["scorer_auc"].items() if v is not None))
    for s, r in report["per_source"].items():
        print(f"  {s:<16} n={r['prompts']:<5} best {r['best_single_model']} {r['best_quality']:.3f}; cascade AIQ "
              f"{r['aiq']:.4f}, max {r['max_quality']:.3f}, parity at {_pct(r['parity_cost_ratio'])}")
    print(f"report: {report['report_json']}")

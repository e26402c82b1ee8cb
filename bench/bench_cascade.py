"""The answer scorer and the cascade on RouterBench, without a trained router.

The RouterBench train CSVs (with answers) are split like `router eval` (20% of prompts held out by
a hash of their id). The pre-call "router" here knows nothing about a prompt: each model's mean
training score (the table of single models), so everything the cascade gains over the mix of
single models comes from reading the answers. The scorer is fitted on the training split with
that pre-call proxy and evaluated, with the same code as `router eval --cascade`, on the
held-out prompts: scorer AUC per benchmark, the cascade curve (every call paid), the agreement
bound, the perfect-verifier cascade and the oracle.

    python bench/bench_cascade.py [--shared DIR] [--json out.json]   (default: the shared data folder)

For the numbers with a trained router's pre-call predictions, use
`router eval --cascade --router ROUTER --outcomes ...` (BENCHMARKS.md names both).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from router.config import shared_data_dir
from router.training.data.outcomes import read_outcomes
from router.training.evaluate.cascade import evaluate_cascade
from router.training.evaluate.routing import evaluate_routing, outcome_matrix, split_outcomes
from router.training.fit.scorer import answer_rows, fit_answer_scorer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, help="the shared data folder (default: $ROUTER_SHARED_DATA, else ../shared/data)")
    ap.add_argument("--json", help="write the report here")
    args = ap.parse_args()
    t0 = time.perf_counter()
    shared = args.shared or shared_data_dir()
    files = sorted((shared / "outcomes" / "routerbench").glob("*_train.csv"))
    if not files:
        raise SystemExit(f"no RouterBench outcomes under {shared}/outcomes/routerbench")
    df = answer_rows(read_outcomes(files))
    train, val = split_outcomes(df, 20)
    models = sorted(df.model.unique())
    mean = train.groupby("model").score.mean()
    scorer = fit_answer_scorer(train, train.model.map(mean).to_numpy(float))
    t_fit = time.perf_counter() - t0
    test = outcome_matrix(val, models)
    ans = val.pivot_table(index="prompt_id", columns="model", values="answer", aggfunc="first")
    ans = ans.reindex(index=test.prompt_ids, columns=models)
    answers = [[a if isinstance(a, str) else "" for a in row] for row in ans.itertuples(index=False)]
    pq = np.tile(mean.reindex(models).to_numpy(float), (len(test.prompts), 1))
    pc = np.tile(train.groupby("model").cost.mean().reindex(models).to_numpy(float), (len(test.prompts), 1))

    def score(rows, cols, others):
        rows, cols = list(rows), list(cols)
        return scorer.score([test.prompts[r] for r in rows], [answers[r][c] for r, c in zip(rows, cols)],
                            [models[c] for c in cols], pq[rows, cols], others)

    routing = evaluate_routing(test, {"table": (pq, pc)})["routers"]["table"]
    pre = [(p["cost"], p["quality"]) for m in ("threshold", "gap") for p in routing[m]["curve"]]
    rep = evaluate_cascade(models, test.sources, pq, pc, test.quality, test.cost, answers, score, precall_points=pre)
    rep["seconds"] = {"fit_scorer": round(t_fit, 1), "total": round(time.perf_counter() - t0, 1)}
    b = rep["best_single"]
    print(f"{rep['prompts']} held-out prompts; best single {rep['best_single_model']} {b['mean_quality']:.4f} "
          f"at {b['mean_cost_paid']:.6f}; oracle {rep['oracle']['mean_quality']:.4f}")
    for name in ("precall", "cascade", "cascade_agree", "agreement_bound", "perfect_verifier"):
        if name in rep:
            r = rep[name]
            par = r["parity_point"]
            print(f"{name:<17} AIQ {r['aiq']:.4f} max {r['max_quality']:.4f} parity(hull) "
                  f"{r['cost_to_match_best_ratio']} parity(setting) {r['parity_cost_ratio']} "
                  f"calls {par['mean_calls'] if par else None}")
    print("scorer AUC", {k: round(v, 3) for k, v in rep["scorer_auc"].items() if v is not None})
    for s, r in rep["per_source"].items():
        print(" ", s, {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()})
    print("seconds", rep["seconds"])
    if args.json:
        Path(args.json).write_text(json.dumps(rep, indent=2, default=float))


if __name__ == "__main__":
    main()

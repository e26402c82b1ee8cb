"""How much per-prompt signal the RouterBench targets need, and how much a router has.

On the RouterBench validation split that `router eval` uses (20% of prompts by a hash of their
id), three measurements:

1. **signal of a trained router**: for every model, the correlation between its predicted
   quality and its true outcome *inside* each benchmark (the part a per-benchmark table cannot
   know), averaged over models.
2. **signal the targets need**: a synthetic predictor = per-benchmark table + a noisy copy of
   each (prompt, model) outcome's within-benchmark residual whose correlation with the truth is
   rho (shrunk by rho, as a calibrated predictor would be); AIQ and the cost at which it reaches
   the best single model's quality, for rho from 0 to 0.8 (mean of SEEDS noise seeds; median
   cost over the seeds that reach it).
3. **an answer-agreement cascade** (post-call, using the recorded answers): ask k cheap models,
   keep the answer when they all give the same letter, else pay for GPT-4. Multiple-choice
   benchmarks only.

    python bench/bench_routing_ceiling.py --router artifacts/routerbench
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

STRONG = "gpt-4-1106-preview"
SEEDS = 20


def within_benchmark_correlation(pred: np.ndarray, true: np.ndarray, sources: np.ndarray) -> dict[str, float]:
    """Mean over models of corr(pred[:, m], true[:, m]) inside each source; arrays (p, m)."""
    out = {}
    for s in sorted(set(sources)):
        rows = sources == s
        rs = [np.corrcoef(pred[rows, j], true[rows, j])[0, 1] for j in range(true.shape[1])
              if pred[rows, j].std() > 0 and true[rows, j].std() > 0]
        out[s] = round(float(np.mean(rs)), 3) if rs else float("nan")
    return out


def synthetic_predictor(table_q: np.ndarray, true_q: np.ndarray, sources: np.ndarray, rho: float,
                        rng: np.random.Generator) -> np.ndarray:
    """Table + rho * (a signal correlated rho with the standardised residual) * residual sd."""
    resid = true_q - table_q
    out = table_q.copy()
    for s in sorted(set(sources)):
        rows = sources == s
        r = resid[rows]
        sd = r.std(0) + 1e-9
        z = (r - r.mean(0)) / sd
        signal = rho * z + np.sqrt(1 - rho ** 2) * rng.standard_normal(z.shape)
        out[rows] = table_q[rows] + sd * rho * signal
    return out


def _letter(response: str) -> str | None:
    m = re.match(r"\s*\(?([A-E])\b", response.strip("[]'\" \\n"))
    return m.group(1) if m else None


def agreement_cascade(paths: list[str], ks: tuple[int, ...] = (1, 2, 3)) -> dict[str, dict]:
    """Best cascade per multiple-choice file: (quality, cost / GPT-4's cost, models), by quality."""
    from router.training.data.outcomes import open_routerbench_csv

    out = {}
    for path in paths:
        f, reader, models = open_routerbench_csv(Path(path))
        with f:
            rows = list(reader)
        answers = {m: [_letter(r[f"{m}|model_response"]) for r in rows] for m in models}
        if np.mean([a is not None for a in answers[STRONG]]) < 0.9:
            continue  # not multiple choice (code)
        score = {m: np.array([float(r[m] or 0) for r in rows]) for m in models}
        cost = {m: np.array([float(r[f"{m}|total_cost"] or 0) for r in rows]) for m in models}
        g_q, g_c = score[STRONG].mean(), cost[STRONG].mean()
        cheap = [m for m in models if cost[m].mean() < 0.2 * g_c]
        best = None
        for k in ks:
            for combo in itertools.combinations(cheap, k):
                first = answers[combo[0]]
                agree = np.array([first[i] is not None and all(answers[m][i] == first[i] for m in combo)
                                  for i in range(len(rows))])
                q = np.where(agree, score[combo[0]], score[STRONG]).mean()
                c = (sum(cost[m] for m in combo) + np.where(agree, 0, cost[STRONG])).mean()
                cand = {"quality": round(float(q), 4), "cost_ratio": round(float(c / g_c), 3), "models": list(combo)}
                if best is None or (q, -c) > (best["quality"], -best["cost_ratio"] * g_c):
                    best = cand
        out[rows[0]["eval_name"] if rows else path] = {"gpt4_quality": round(float(g_q), 4), "best_cascade": best}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--router", required=True, help="a router trained with RouterBench outcomes")
    args = ap.parse_args()
    from router import Router
    from router.config import shared_data_dir
    SHARED_DATA = shared_data_dir()
    from router.training.data.outcomes import read_routerbench
    from router.training.evaluate.routing import evaluate_routing, outcome_matrix, split_outcomes, table_predictor

    paths = sorted(str(p) for p in (SHARED_DATA / "outcomes" / "routerbench").glob("*_train.csv"))
    df = pd.concat([read_routerbench(p) for p in paths])
    train, val = split_outcomes(df)
    T = outcome_matrix(train)
    V = outcome_matrix(val, T.models)
    sources = np.array(V.sources)
    table_q, _ = table_predictor(T.sources, T, V.sources)

    def score(pred_q: np.ndarray) -> tuple[float, float | None]:
        """(AIQ, cost at which it reaches the best single model / that model's cost), true costs."""
        entry = evaluate_routing(V, {"p": (pred_q, V.cost)})["routers"]["p"]
        return entry["aiq"], entry["cost_to_match_best_ratio"]

    r = Router.load(args.router)
    est = r.predict(V.prompts)
    pred = est.quality[:, [list(est.models).index(m) for m in V.models]]
    own_aiq, own_ratio = score(pred)
    report = {
        "prompts": len(V.prompts), "best_single_quality": round(float(V.quality.mean(0).max()), 4),
        "router": {"within_benchmark_correlation": within_benchmark_correlation(pred, V.quality, sources),
                   "aiq_true_costs": round(own_aiq, 4), "best_quality_at_cost_ratio": own_ratio},
        "table_aiq_true_costs": round(score(table_q)[0], 4),
        "synthetic": [],
    }
    rng = np.random.default_rng(0)
    for rho in (0.0, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.8):
        runs = [score(synthetic_predictor(table_q, V.quality, sources, rho, rng)) for _ in range(SEEDS)]
        reached = [x for _, x in runs if x is not None]
        report["synthetic"].append({
            "rho": rho, "aiq": round(float(np.mean([a for a, _ in runs])), 4),
            "best_quality_reached_in": f"{len(reached)}/{SEEDS} seeds",
            "best_quality_at_cost_ratio": round(float(np.median(reached)), 3) if reached else None})
    report["agreement_cascade"] = agreement_cascade(paths)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Pre-call routing on held-out prompts *as sent* (issue 15, part 1): what each change moved.

On the RouterBench validation split that `router eval` uses (20% of prompts by a hash of their
id; prompts as sent, few-shot examples included), for a router trained with `router train
--outcomes <RouterBench *_train.csv>`:

* **skew**: the router's heads fed the prompt as sent without dropping the few-shot examples
  (what serving did before: training stripped them, serving did not) against the router as it
  serves now (the same text on both sides); per model, mean predicted minus mean true quality on
  the few-shot prompts.
* **rules**: AIQ of the per-request threshold, the gap rule, the value rule (price sweep) and the
  router's tiers (targets through its price curve), with and without the out-of-fold
  calibration, next to the kNN-25 and per-task-table baselines (fitted on the training split,
  on the text the router reads) under the same rules.
* **tiers**: each tier's realised mean quality and cost (share of the best single model's).

    python bench/bench_precall.py --router /tmp/rb [--outcomes FILES...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SHARED = Path("/work/shared/data") if Path("/work/shared/data").is_dir() else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _rows(n):
    return np.arange(n)


def main(argv=None) -> int:
    from router import Router
    from router.embedders import with_cache
    from router.policy import choose
    from router.tasks.classifier import featurize
    from router.text.fewshot import strip_few_shot
    from router.text.request import parse_request
    from router.training.data.outcomes import read_outcomes
    from router.training.evaluate.routing import (evaluate_routing, knn_predictor, outcome_matrix, split_outcomes,
                                                  table_predictor)

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--router", required=True)
    ap.add_argument("--outcomes", nargs="*", type=Path,
                    default=sorted((SHARED / "outcomes" / "routerbench").glob("*_train.csv")))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    router = Router.load(args.router)
    df = read_outcomes(args.outcomes)
    df = df[df.model.isin(router.models)]
    train, val = split_outcomes(df, 20)
    models = [m for m in router.models if m in set(val.model)]
    test, trainm = outcome_matrix(val, models), outcome_matrix(train, models)
    cols = [router.models.index(m) for m in models]
    body = with_cache(router.classifier.embedder, None)
    qm, cm = router.quality_model, router.cost_model

    def predict(texts, raw_prompts, calibrated=True):
        X = featurize(body, texts)
        tasks = router.classifier.predict_features(X, texts)
        saved = qm.calibration
        if not calibrated:
            qm.calibration = {}
        try:
            q = qm.predict_quality(texts, tasks, router.models, features=X)[:, cols]
        finally:
            qm.calibration = saved
        c = cm.predict_cost([parse_request(p).prompt_tokens for p in raw_prompts], tasks, router.models,
                            features=X)[:, cols]
        return q, c, tasks, X

    served = [router.classifier_text(p) for p in test.prompts]
    q_cal, c_srv, tasks, Xte = predict(served, test.prompts)
    q_raw = predict(served, test.prompts, calibrated=False)[0]
    q_skew = predict(test.prompts, test.prompts, calibrated=False)[0]  # heads on the text as sent
    tr_text = [router.classifier_text(p) for p in trainm.prompts]
    Xtr = featurize(body, tr_text)
    tr_tasks = [t.task for t in router.classifier.predict_features(Xtr, tr_text)]
    knn = knn_predictor(Xtr, trainm, Xte, k=25)
    table = table_predictor(tr_tasks, trainm, [t.task for t in tasks])

    few = np.array([strip_few_shot(p) != p for p in test.prompts])
    bias = {name: {m.split("/")[-1]: round(float(q[few, j].mean() - test.quality[few, j].mean()), 3)
                   for j, m in enumerate(models)}
            for name, q in (("skewed (as sent, before)", q_skew), ("served (few-shot dropped)", q_raw),
                            ("served + calibrated", q_cal))}
    rep = evaluate_routing(test, {"router (calibrated)": (q_cal, c_srv), "router (uncalibrated)": (q_raw, c_srv),
                                  "router skewed (as sent)": (q_skew, c_srv), "knn": knn, "task-table": table},
                           policies={"router (calibrated)": router.policy})
    best = rep["best_single_model"]
    best_q, best_c = rep["single_models"][best]["quality"], rep["single_models"][best]["cost"]
    tiers = {}
    for tier, target in router.policy.tiers.items():
        price = router.policy.price(target)
        pick = (choose(q_cal, c_srv, models, target=target) if price is None else
                choose(q_cal, c_srv, models, price=price, anchor=router.policy.anchor,
                       anchor_margin=router.policy.anchor_margin))
        r = _rows(len(pick))
        tiers[tier] = {"target": target, "price": price, "quality": round(float(test.quality[r, pick].mean()), 4),
                       "predicted": round(float(q_cal[r, pick].mean()), 4),
                       "cost_share_of_best": round(float(test.cost[r, pick].mean() / best_c), 3)}
    out = {"router": str(args.router), "prompts": len(test.prompts), "few_shot_prompts": int(few.sum()),
           "best_single_model": best, "best_quality": round(best_q, 4), "mix_aiq": round(rep["mix_single_models_aiq"], 4),
           "aiq": {name: {mode: round(r[mode]["aiq"], 4) for mode in ("threshold", "gap", "value")}
                   | {"max_quality": round(r["max_quality"], 4),
                      "best_quality_at_share": None if r["cost_to_match_best_ratio"] is None
                      else round(r["cost_to_match_best_ratio"], 3)}
                   for name, r in rep["routers"].items()},
           "few_shot_bias": bias, "tiers": tiers}
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

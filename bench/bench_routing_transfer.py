"""Routing on a benchmark the quality model never saw (a proxy for "route GSM8K between GPT-4
and Mixtral"): for each held-out source, fit the quality heads on every other outcome source
(RouterBench + MMLU), then APGR / CPT of GPT-4 vs Mixtral on the held-out source.

    python bench/bench_routing_transfer.py --router artifacts/routerbench
"""

from __future__ import annotations

import argparse
import json

import numpy as np

STRONG, WEAK = "gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--router", required=True, help="a trained router (its classifier and catalog are reused)")
    ap.add_argument("--holdout", nargs="+", default=["arc-challenge", "mbpp", "winogrande", "mmlu-math"])
    args = ap.parse_args()
    from router import Router
    from router.tasks.classifier import featurize
    from router.config import default_cache_path
    from router.embedders import CachedEmbedder
    from router.predictors.learned import quality_features
    from router.config import shared_data_dir
    SHARED_DATA = shared_data_dir()
    from router.training.evaluate.metrics import apgr, cpt
    from router.training.data.outcomes import default_outcome_files, read_outcomes
    from router.training.fit.quality import build_quality_model

    r = Router.load(args.router)
    df = read_outcomes(default_outcome_files(SHARED_DATA))
    df = df[df.model.isin(r.models)]
    math_subjects = {"mmlu_abstract_algebra", "mmlu_college_mathematics", "mmlu_elementary_mathematics",
                     "mmlu_high_school_mathematics", "mmlu_high_school_statistics", "mmlu_college_physics",
                     "mmlu_high_school_physics", "mmlu_econometrics"}
    df = df.assign(group=np.where(df.source.isin(math_subjects), "mmlu-math",
                                  np.where(df.source.str.startswith("mmlu"), "mmlu-other", df.source)))
    uniq = df.drop_duplicates("prompt_id").reset_index(drop=True)
    index = {p: i for i, p in enumerate(uniq.prompt_id)}
    df["prompt_index"] = df.prompt_id.map(index)
    X = featurize(CachedEmbedder(r.classifier.embedder, default_cache_path()), uniq.prompt.tolist())
    tasks = r.classifier.predict_features(X, uniq.prompt.tolist())
    views = len(r.classifier.layout.views)  # quality heads read the whole text only
    Z = quality_features(X, tasks, views)
    out = {}
    for group in args.holdout:
        train, test = df[df.group != group], df[df.group == group]
        qm = build_quality_model(r.catalog, train, Z, C=0.1, text_views=views)
        piv = test.pivot_table(index="prompt_index", columns="model", values="score").dropna(subset=[STRONG, WEAK])
        idx = piv.index.to_numpy()
        q = qm.predict_quality(None, [tasks[i] for i in idx], [STRONG, WEAK], features=X[idx])
        score = q[:, 0] - q[:, 1]
        ys, yw = piv[STRONG].to_numpy(), piv[WEAK].to_numpy()
        out[group] = {"prompts": int(len(idx)), "strong_acc": float(ys.mean()), "weak_acc": float(yw.mean()),
                      "apgr": round(apgr(score, ys, yw), 4), "cpt50": cpt(score, ys, yw, 0.5),
                      "cpt80": cpt(score, ys, yw, 0.8)}
        print(group, out[group], flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

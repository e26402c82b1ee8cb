"""Time ``Router.load`` of a saved learned router (in-process, imports already paid).

``python bench/bench_router_load.py [--router DIR] [--repeats 15]``

Without ``--router`` a small learned router is trained first with the hashing embedder
(logreg classifier + ridge complexity head, a logreg quality head and a ridge cost head per
catalog model, the answer scorer's calibrated gradient-boosted trees) and saved to a temporary
folder. Prints the median and minimum load time as JSON, and how long hashing the folder's files
takes (the manifest check's share of the load).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build(folder: Path) -> Path:
    import numpy as np
    import pandas as pd

    from router import ModelCatalog, Router
    from router.embedders import HashingEmbedder
    from router.predictors.answer_scorer import AnswerScorer, answer_features
    from router.predictors.learned import cost_features, quality_features
    from router.tasks.classifier import featurize
    from router.text.request import estimate_tokens
    from router.training.data.datasets import LabelledPrompt, LabelledSet
    from router.training.fit.quality import build_cost_model, build_quality_model
    from router.training.fit.tasks import fit_task_classifier

    catalog = ModelCatalog.load()
    tasks = ["code", "math", "creative", "general"]
    prompts = [f"{t} prompt number {i} about {t} things" for t in tasks for i in range(30)]
    ds = LabelledSet([LabelledPrompt(p, p.split()[0], "a" if i % 2 else "b") for i, p in enumerate(prompts)])
    clf = fit_task_classifier(ds, HashingEmbedder(1024), threshold=0.0)
    X = featurize(clf.embedder, prompts)
    preds = clf.predict_features(X, prompts)
    rng = np.random.default_rng(0)
    rows = [(f"p{i}", p, m, float(rng.random() < 0.5), 1e-5 * (1 + j)) for i, p in enumerate(prompts)
            for j, m in enumerate(catalog.names)]
    df = pd.DataFrame(rows, columns=["prompt_id", "prompt", "model", "score", "cost"])
    df["prompt_index"] = [int(pid[1:]) for pid in df.prompt_id]
    qm = build_quality_model(catalog, df, quality_features(X, preds), C=1.0)
    cm = build_cost_model(catalog, df, cost_features([estimate_tokens(p) for p in prompts], X, preds))
    answers = ["A" if rng.random() < 0.6 else "maybe B, not sure" for _ in range(600)]
    y = np.array([float(a == "A") for a in answers])
    names = [catalog.names[i % 2] for i in range(600)]
    scorer = AnswerScorer().fit(answer_features(["Answer:"] * 600, answers, np.full(600, 0.6)), names, y)
    router = Router(catalog, classifier=clf, quality_model=qm, cost_model=cm)
    router.answer_scorer = scorer
    return router.save(folder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--router", help="a saved router folder (default: train a small one)")
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    from router import Router

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.router) if args.router else build(Path(tmp) / "router")
        Router.load(folder)  # warm: imports and file cache
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            Router.load(folder)
            times.append(time.perf_counter() - t0)
        files = [p for p in folder.rglob("*") if p.is_file()]
        t0 = time.perf_counter()
        for p in files:
            hashlib.sha256(p.read_bytes()).hexdigest()
        hash_s = time.perf_counter() - t0
        print(json.dumps({"files": len(files), "bytes": sum(p.stat().st_size for p in files),
                          "load_median_s": round(statistics.median(times), 4), "load_min_s": round(min(times), 4),
                          "hash_all_files_s": round(hash_s, 4), "repeats": args.repeats}, indent=2))


if __name__ == "__main__":
    main()

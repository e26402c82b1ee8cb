"""Task-classifier speed: classify one prompt (p50/p95 ms) with a trained router, and the
training time from scratch (empty embedding cache) and with a warm cache.

    python bench/bench_classify.py --router artifacts/router [--train]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--router", required=True)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--train", action="store_true", help="also time training cold and warm")
    args = ap.parse_args()
    from router import Router
    from router.training.demo import load_demo_prompts

    r = Router.load(args.router)
    prompts = load_demo_prompts()
    r.classify(prompts[:4])  # load models
    lat = []
    for i in range(args.n):
        t = time.perf_counter()
        r.classify(prompts[i % len(prompts)])
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    out = {"router": args.router, "embedder": r.classifier.embedder.name,
           "classify_p50_ms": round(statistics.median(lat), 2), "classify_p95_ms": round(lat[int(0.95 * len(lat))], 2),
           "route_p50_ms": None, "machine": machine()}
    lat = []
    for i in range(args.n):
        t = time.perf_counter()
        r.route(prompts[i % len(prompts)])
        lat.append((time.perf_counter() - t) * 1000)
    out["route_p50_ms"] = round(statistics.median(lat), 2)
    if args.train:
        from router.training.fit.train import TrainConfig, train_router

        with tempfile.TemporaryDirectory() as tmp:
            cold = train_router(TrainConfig(out=Path(tmp) / "cold", cache=Path(tmp) / "cache.sqlite"))
            warm = train_router(TrainConfig(out=Path(tmp) / "warm", cache=Path(tmp) / "cache.sqlite"))
        out["train_cold_s"] = cold.seconds
        out["train_warm_s"] = warm.seconds
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

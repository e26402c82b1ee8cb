"""Routing latency of a router (cold-start by default): p50/p95 per single prompt, and
batched throughput. ``python bench/bench_route.py [--router DIR] [--n 300]``"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

from router import Router
from router.training.demo import load_demo_prompts


def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--router")
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()
    r = Router.load(args.router) if args.router else Router.default()
    prompts = load_demo_prompts()
    r.route_many(prompts)  # warm up
    lat = []
    for i in range(args.n):
        t = time.perf_counter()
        r.route(prompts[i % len(prompts)])
        lat.append((time.perf_counter() - t) * 1000)
    batch = (prompts * (args.n // len(prompts) + 1))[: args.n]
    t = time.perf_counter()
    r.route_many(batch)
    thr = len(batch) / (time.perf_counter() - t)
    lat.sort()
    print(json.dumps({"router": args.router or "default (regex + priors)", "route_p50_ms": round(statistics.median(lat), 3),
                      "route_p95_ms": round(lat[int(0.95 * len(lat))], 3), "batched_prompts_per_s": round(thr, 1),
                      "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()

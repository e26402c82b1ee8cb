"""Routing latency of a router (cold-start by default): p50/p95/p99 per single prompt, and
batched throughput, on real prompt lengths (``--mix realistic``, the default: the length mix of
bench/bench_encoder.py, median ~250 characters with a tail past 2,000) or the short demo prompts
(``--mix demo``). ``python bench/bench_route.py [--router DIR] [--n 300] [--mix realistic|demo]``"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from router import Router
from router.training.demo import load_demo_prompts


def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--router")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--mix", choices=["realistic", "demo"], default="realistic")
    args = ap.parse_args()
    r = Router.load(args.router) if args.router else Router.default()
    if args.mix == "demo":
        prompts = load_demo_prompts()
    else:
        from bench_encoder import length_mix, pool_prompts

        prompts = length_mix(pool_prompts(), args.n)
    from router.text.language import english_mask

    other_languages = int((~english_mask(prompts)).sum())
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
                      "route_p95_ms": round(lat[int(0.95 * len(lat))], 3),
                      "route_p99_ms": round(lat[int(0.99 * len(lat))], 3), "mix": args.mix,
                      "prompt_chars_p50": sorted(map(len, prompts))[len(prompts) // 2],
                      "prompts_not_english": other_languages, "batched_prompts_per_s": round(thr, 1),
                      "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()

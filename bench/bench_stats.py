"""``/v1/stats`` and ``router stats`` at scale: time ``UsageStore.stats`` on a SQLite usage log of
N synthetic rows (default 1,000,000).

``python bench/bench_stats.py [--rows 1000000] [--db PATH] [--reuse] [--repeat 5]``

The log is created by the code under test (``UsageStore`` applies its migrations), then filled in
bulk with plain ``sqlite3`` (one transaction, ``executemany``) with every column the schema has:
8 models, 6 tasks, 2% failed and 1% rejected requests, 3% escalated, 10% with a fallback, a
fifth with a stored prompt of ~400 characters and a chain of one to three attempts. ``--reuse``
opens an existing file instead (e.g. one filled by an older version: opening it then runs the
pending migrations, and their time is reported as ``open_s``). Reports the median and min of
``--repeat`` calls without and with ``since`` (the last tenth of the time range). Prints JSON.
To time an older checkout, run it with ``PYTHONPATH=<that checkout>``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if "PYTHONPATH" not in os.environ:
    sys.path.insert(0, str(ROOT))

MODELS = ["gpt-4o", "gpt-4o-mini", "deepseek-chat", "glm-4-flash", "claude-sonnet-4", "gemini-2.0-flash",
          "qwen-2.5-72b", "llama-3.3-70b"]
TASKS = ["code", "math", "chat", "summarization", "classification", "translation"]
T0 = 1_700_000_000.0


def fill(path: Path, rows: int, seed: int = 0) -> float:
    """Create the schema with the code under test, then bulk-insert ``rows`` rows; seconds taken."""
    from router.serving.usage.store import UsageStore

    UsageStore(f"sqlite:///{path}").close()
    rng = random.Random(seed)
    con = sqlite3.connect(path, isolation_level=None)
    cols = [r[1] for r in con.execute("PRAGMA table_info(requests)")]
    t = time.perf_counter()
    con.execute("PRAGMA synchronous=OFF")
    con.execute("BEGIN")
    prompt = ("Explain the difference between a process and a thread, with examples. " * 6)[:400]

    def gen():
        for i in range(rows):
            u = rng.random()
            status = "rejected" if u < 0.01 else ("error" if u < 0.03 else "ok")
            model = MODELS[rng.randrange(len(MODELS))]
            n_att = 1 if rng.random() > 0.1 else rng.choice((2, 3))
            chain = [{"model": MODELS[(MODELS.index(model) + k) % len(MODELS)], "status": "error",
                      "reason": "timeout", "latency_ms": 12.5} for k in range(n_att - 1)]
            chain.append({"model": model, "status": status, "reason": "routed", "latency_ms": 40.0})
            pt, ct = rng.randint(10, 4000), rng.randint(0, 1500)
            r = {
                "request_id": f"req_{i:09d}", "created_at": T0 + i * 0.5, "task": TASKS[i % len(TASKS)],
                "model": "auto:premium" if status == "rejected" else model,
                "requested_model": "auto:premium" if status == "rejected" else "auto",
                "tier": "balanced", "predicted_quality": 0.8, "prompt_tokens": 0 if status == "rejected" else pt,
                "completion_tokens": 0 if status != "ok" else ct,
                "cost_usd": 0.0 if status == "rejected" else (pt * 0.15 + ct * 0.6) / 1e6,
                "latency_ms": rng.lognormvariate(5.5, 0.6), "status": status, "error": None if status == "ok" else "x",
                "chain": json.dumps(chain), "escalated": rng.random() < 0.03, "stream": rng.random() < 0.3,
                "prompt": prompt if rng.random() < 0.2 else None, "prompt_hash": "0" * 64, "client": "bench",
                "router_version": "cold-start", "routed_model": model, "propensity": 1.0, "explored": False,
                "target_quality": 0.75, "candidates": None, "classifier_text": None, "answer": None,
                "origin": "traffic", "attempts": n_att,
            }
            yield tuple(r.get(c) for c in cols)

    con.executemany(f"INSERT INTO requests ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", gen())
    con.execute("COMMIT")
    con.close()
    return time.perf_counter() - t


def timed(fn, repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--db", help="SQLite file (default: a temporary one, removed afterwards)")
    ap.add_argument("--reuse", action="store_true", help="open --db as it is (no fill)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import router
    from router import ModelCatalog
    from router.serving.usage.store import UsageStore

    tmp = None
    if args.db:
        path = Path(args.db)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-stats-")
        path = Path(tmp.name) / "usage.db"
    out: dict = {"rows": args.rows, "code": str(Path(router.__file__).parents[1]),
                 "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "sqlite": sqlite3.sqlite_version, "platform": platform.platform()}}
    if not args.reuse:
        path.unlink(missing_ok=True)
        out["fill_s"] = round(fill(path, args.rows), 2)
    out["db_mb"] = round(path.stat().st_size / 1e6, 1)
    t = time.perf_counter()
    store = UsageStore(f"sqlite:///{path}")
    out["open_s"] = round(time.perf_counter() - t, 3)
    catalog = ModelCatalog.load()
    try:
        n = store.count()
        out["rows_in_db"] = n
        out["stats_all"] = timed(lambda: store.stats(catalog), args.repeat)
        since = T0 + 0.9 * n * 0.5
        out["stats_last_tenth"] = timed(lambda: store.stats(catalog, since=since), args.repeat)
        s = store.stats(catalog)
        out["sample"] = {k: s.get(k) for k in ("requests", "ok", "errors", "rejected", "savings_pct", "fallbacks",
                                                "escalations", "latency_ms")}
    finally:
        store.close()
        if tmp is not None:
            tmp.cleanup()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

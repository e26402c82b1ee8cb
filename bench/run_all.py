"""Run every benchmark in bench/ in turn (`make bench`); results are printed as JSON (copy into
BENCHMARKS.md).

The benchmarks that need a trained router get one: a router trained on the task data (and, when
the shared RouterBench / RouteLLM outcomes are present, on those too) is written once to
``artifacts/bench-router`` and reused by later runs; ``--retrain`` trains it afresh. The routing
benchmarks need the shared outcomes and are skipped, saying so, without them.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
# script -> (needs a router, needs outcome data)
SCRIPTS = {
    "bench_route.py": (True, False),
    "bench_first_decision.py": (True, False),
    "bench_embed.py": (False, False),
    "bench_classify.py": (True, False),
    "bench_gateway.py": (False, False),
    "bench_routing_transfer.py": (True, True),
    "bench_routing_ceiling.py": (True, True),
    "bench_loop.py": (False, True),
    "bench_precall.py": (True, True),
    "bench_cascade.py": (False, True),
    "bench_encoder.py": (False, False),
    "bench_router_load.py": (True, False),
    "bench_skops_heads.py": (False, False),
    "bench_fake_upstream.py": (False, False),
    "bench_faults.py": (False, False),
    "bench_stats.py": (False, False),
    "bench_scale.py": (False, False),
    "bench_static.py": (False, False),
    "bench_scorer_features.py": (False, True),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--router-dir", default=str(ROOT / "artifacts" / "bench-router"))
    ap.add_argument("--retrain", action="store_true", help="train the benchmark router afresh")
    args = ap.parse_args()
    missing = sorted(set(p.name for p in HERE.glob("bench_*.py")) - set(SCRIPTS))
    if missing:
        sys.exit(f"run_all.py does not know how to run {missing}: add them to SCRIPTS")

    from router.config import shared_data_dir
    SHARED_DATA = shared_data_dir()
    from router.training.data.outcomes import default_outcome_files

    outcomes = [str(p) for p in default_outcome_files(SHARED_DATA)]
    router_dir = Path(args.router_dir)
    if args.retrain and router_dir.exists():
        shutil.rmtree(router_dir)
    if not router_dir.exists():
        cmd = [sys.executable, "-m", "router", "train", "--out", str(router_dir), "--no-track"]
        if outcomes:
            cmd += ["--catalog", str(ROOT / "models" / "routerbench.yaml"), "--outcomes", *outcomes]
        print(f"== training the benchmark router into {router_dir} ({len(outcomes)} outcome files)", flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT)
    for name, (needs_router, needs_outcomes) in SCRIPTS.items():
        print(f"== {name}", flush=True)
        if needs_outcomes and not outcomes:
            print(f"skipped: no outcome data under {SHARED_DATA / 'outcomes'}", flush=True)
            continue
        cmd = [sys.executable, str(HERE / name)]
        if needs_router:
            cmd += ["--router", str(router_dir)]
        subprocess.run(cmd, check=True, cwd=ROOT)


if __name__ == "__main__":
    main()

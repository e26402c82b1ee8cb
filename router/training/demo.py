"""The main job on the embedded defaults (what ``make demo`` runs):

1. train a router on the project's labelled prompts (plus ``../shared/data`` when present),
2. log it to MLflow (``mlflow.yaml``: ``sqlite:///mlflow.db`` by default) and register it,
3. promote it through the gate (the first version becomes champion),
4. load the champion by alias and route the demo prompts,
5. print the table and the savings against sending everything to gpt-4o,
6. one round of the learning loop on a small simulated log (seconds): requests routed with
   exploration and logged, users' thumbs imported with ``router feedback import``, ``router
   retrain`` from the cold-start router, the gate's verdict, and before/after numbers.

``python -m router.training.demo [--cold-start]``; ``--cold-start`` skips 1-4 and uses
``Router.default()`` (catalog priors + regex).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .. import Router, RouterError
from ..config import default_usage_db, project_dir
from ..errors import DataError
from ..savings import format_table, savings_report

DEMO_PROMPTS = Path(__file__).resolve().parent / "demo_prompts.jsonl"


def load_demo_prompts(path: Path = DEMO_PROMPTS) -> list[str]:
    prompts = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                prompts.append(json.loads(line)["prompt"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(f"bad demo prompt row: {exc}", path=str(path), line=i) from None
    return prompts


def run(router: Router, prompts: Sequence[str], tier: str | None = None) -> str:
    decisions = router.route_many(prompts, tier=tier)
    return format_table(prompts, decisions, savings_report(decisions))


def measured_costs(url: str | None = None) -> str | None:
    """The usage log's measured totals (``router stats``), or ``None`` when there is no log."""
    from ..cli.stats import format_stats, open_store, safe_url
    from ..catalog.model_catalog import ModelCatalog

    url = url or default_usage_db()
    try:
        store = open_store(url)
    except DataError:
        return None
    try:
        s = store.stats(ModelCatalog.load(), baseline_model="gpt-4o")
    finally:
        store.close()
    if not s["requests"]:
        return None
    return "measured on real requests (usage log):\n" + format_stats(s, safe_url(url))


def _train_register_promote(out: Path) -> str:
    from .tracking.runs import track_training
    from .tracking.runs import load_settings, promote
    from .fit.train import TrainConfig, train_router

    settings = load_settings()
    from ..progress import for_cli

    say = for_cli()  # stderr: bars on a terminal, a line every 10 s otherwise
    t = time.perf_counter()
    cfg = TrainConfig(out=out)
    res = train_router(cfg, progress=say)
    reg = track_training(settings, cfg, res, say)
    print(f"registered version {reg['version']} (gate task accuracy "
          f"{reg['metrics'].get('task_accuracy', float('nan')):.3f})", flush=True)
    result = promote(settings, progress=say)
    print(f"champion: v{result.champion_after}; trained, registered and promoted in "
          f"{time.perf_counter() - t:.0f}s", flush=True)
    return f"models:/{settings.registered_model}@{settings.champion}"


def loop_round(requests: int = 800, epsilon: float = 0.3, seed: int = 0) -> int:
    """Step 6: one round of the learning loop in a temporary folder; returns retrain's exit code."""
    import shlex
    import tempfile

    import numpy as np

    from ..cli.main import main as cli
    from ..serving.usage.store import UsageStore
    from .loop.simulate import policy_value, simulate_traffic, simulated_prompts

    print("\n=== the learning loop: one round on a simulated log ===", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        base = Router.default()
        base_dir = base.save(Path(tmp) / "base")
        db = f"sqlite:///{Path(tmp) / 'usage.db'}"
        with UsageStore(db, store_prompts=True) as store:
            feedback = simulate_traffic(base, store, requests, epsilon, np.random.default_rng(seed), "cold-start")
        fb = Path(tmp) / "feedback.jsonl"
        fb.write_text("".join(json.dumps(r) + "\n" for r in feedback), encoding="utf-8")
        print(f"logged {requests} requests routed by the cold-start router (exploration {epsilon}); "
              f"users' thumbs in {fb.name}", flush=True)
        cli(["feedback", "import", str(fb), "--usage-db", db])
        args = ["retrain", "--usage-db", db, "--router", str(base_dir), "--out", str(Path(tmp) / "candidate"),
                "--no-track", "--embedder", "hashing", "--cache", ""]
        print("$ router " + shlex.join(args[:1] + ["--usage-db", "DB", "--router", "BASE", "--out", "CANDIDATE"]
                                       + args[7:]), flush=True)
        code = cli(args)
        fresh = simulated_prompts(400, np.random.default_rng(seed + 1))
        before, after = policy_value(base, fresh), policy_value(Router.load(Path(tmp) / "candidate"), fresh)
        print(f"on 400 fresh simulated prompts: cold start quality {before['quality']:.3f} at "
              f"${before['cost_usd']:.7f}/request; retrained {after['quality']:.3f} at ${after['cost_usd']:.7f}"
              f" ({'promoted' if code == 0 else 'refused by the gate'})", flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m router.training.demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cold-start", action="store_true", help="no training: catalog priors + regex")
    ap.add_argument("--router", help="route with this router folder or URI instead of training one")
    ap.add_argument("--out", default=str(project_dir() / "artifacts" / "router"), help="where to save the router")
    ap.add_argument("--tier", default=None, help="only this tier (default: all three)")
    ap.add_argument("--usage-db", help="usage log whose measured costs are printed too, when it exists "
                                       "(default: $ROUTER_USAGE_DB or sqlite:///router_usage.db)")
    ap.add_argument("--no-loop", action="store_true", help="skip the learning-loop round at the end")
    args = ap.parse_args(argv)
    try:
        if args.cold_start:
            router = Router.default()
        else:
            uri = args.router or _train_register_promote(Path(args.out))
            print(f"\nloading {uri}", flush=True)
            router = Router.load(uri)
        prompts = load_demo_prompts()
        for tier in ([args.tier] if args.tier else ["budget", "balanced", "quality"]):
            print(f"\n=== tier: {tier} ===")
            print(run(router, prompts, tier))
        measured = measured_costs(args.usage_db)
        if measured:
            print("\n" + measured)
        if not args.no_loop:
            loop_round()
    except RouterError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

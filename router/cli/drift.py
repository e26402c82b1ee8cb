"""``router drift --usage-db URL --router BASE [--since T] [--json] [--plot FILE.png]``: recent
traffic against the router's training data, with a plain verdict (:mod:`router.training.loop.drift`).

Exit codes: 0 report printed (whatever the verdict; ``--exit-code`` makes "retrain advised"
exit 4 for cron jobs), 1 an error (no log, no reference), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .main import add_output_flags, positive_int
from .retrain import parse_since
from .stats import open_store

__all__ = ["register"]


def _reference(router, files: list[str] | None, say) -> list[str] | None:
    from ..training.data.outcomes import read_outcomes

    named = [str(f) for f in files or []]
    if not named:
        meta = getattr(router.quality_model, "metadata", None) or {}
        named = [f for f in meta.get("outcome_files") or [] if Path(f).is_file()]
    if not named:
        say("drift: the base names no training outcome files (or they are missing): the log's traffic "
            "before --since is the reference")
        return None
    df = read_outcomes(named)
    return df.drop_duplicates("prompt_id").prompt.tolist()


def cmd_drift(args: argparse.Namespace) -> int:
    from ..config import default_usage_db
    from ..embedders import with_cache
    from ..routing import Router
    from ..tasks.classifier import LearnedTaskClassifier
    from ..training.loop.drift import DriftThresholds, drift_report, plot_drift

    say = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))  # noqa: E731
    router = Router.load(args.router)
    if isinstance(router.classifier, LearnedTaskClassifier) and args.cache != "":
        router.classifier.embedder = with_cache(router.classifier.embedder, args.cache)
    ref = _reference(router, args.reference, say)
    with open_store(args.usage_db or default_usage_db()) as store:
        rep = drift_report(router, store, since=parse_since(args.since), reference_texts=ref, sample=args.sample,
                           seed=args.seed, thresholds=DriftThresholds(), progress=say)
    if args.plot:
        rep["plot"] = str(plot_drift(rep, args.plot))
    if args.json:
        print(json.dumps(rep, indent=2, default=float))
    else:
        c = rep["checks"]
        print(f"recent: {rep['recent_rows']} requests since {rep['since']:.0f} ({rep['recent_sampled']} sampled); "
              f"reference: {rep['reference']}")
        if "task_mix" in c:
            print(f"task mix TV {c['task_mix']['tv']:.3f}; classifier confidence {c['confidence']['reference']:.3f}"
                  f" -> {c['confidence']['recent']:.3f}; share per model TV {c['model_share']['tv']:.3f}")
            e = c["embedding"]
            print(f"embedding ({e['embedder']}): MMD² {e['mmd2']:.4f} (noise floor {e['mmd2_noise_floor']:.4f}); "
                  f"cosine to training centroids {e['centroid_cosine_reference']:.3f} -> {e['centroid_cosine_recent']:.3f}")
        for m, d in sorted(c["feedback"]["per_model"].items()):
            sides = ", ".join(f"{k} {v['mean']:.3f} (n={v['n']})" for k, v in sorted(d.items()))
            print(f"feedback {m}: {sides}")
        if args.plot:
            print(f"plot: {rep['plot']}")
        print(rep["verdict"]["text"])
    return 4 if args.exit_code and rep["verdict"]["retrain"] else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("drift", help="recent traffic against the training data: retrain advised or not",
                       description="Compare recent traffic in the usage log with the router's training prompts "
                                   "(task mix, classifier confidence, share per model, embedding distance, "
                                   "feedback per model over time) and say whether a retrain is advised.")
    p.add_argument("--usage-db", help="usage log URL (default: $ROUTER_USAGE_DB or sqlite:///router_usage.db)")
    p.add_argument("--router", required=True, help="BASE: a router folder or models:/NAME@champion")
    p.add_argument("--since", help="start of the recent window (epoch seconds or ISO 8601; default: the last "
                                   "7 days before the newest request)")
    p.add_argument("--reference", nargs="+", metavar="FILE",
                   help="reference prompts: outcome files (default: the files BASE was trained on, else the "
                        "log before --since)")
    p.add_argument("--sample", type=positive_int, default=1000, help="texts sampled per side (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples (default 0)")
    p.add_argument("--plot", metavar="FILE.png", help="write the report as a PNG")
    p.add_argument("--cache", help="embedding cache file ('' disables; default the project's)")
    p.add_argument("--exit-code", action="store_true", help="exit 4 when a retrain is advised")
    add_output_flags(p)
    p.set_defaults(func=cmd_drift)

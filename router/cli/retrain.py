"""``router retrain``: refit a router from the usage log's feedback and gate it off-policy.

The candidate folder is always written; the gate decides promotion. Exit codes: 0 the gate
promotes (with MLflow: registered as challenger and moved to champion), 3 the gate refuses (the
candidate is still written and, with MLflow, registered as challenger), 1 an error, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .main import add_output_flags, positive_int
from .training import mlflow_flags

__all__ = ["register", "parse_since"]


def _weights(values: list[str] | None) -> dict[str, float]:
    from ..training.loop.rows import DEFAULT_ORIGIN_WEIGHTS

    out = dict(DEFAULT_ORIGIN_WEIGHTS)
    for v in values or []:
        k, sep, w = v.partition("=")
        if not sep or k not in out:
            raise argparse.ArgumentTypeError(f"--origin-weight takes ORIGIN=W with ORIGIN in {sorted(out)}, got {v!r}")
        out[k] = float(w)
    return out


def parse_since(text: str | None) -> float | None:
    """``--since``: epoch seconds or ISO 8601 -> epoch seconds (``None`` stays ``None``)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        from datetime import datetime

        from ..errors import InvalidRequestError

        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            raise InvalidRequestError(f"--since must be epoch seconds or an ISO 8601 time, got {text!r}") from None


def cmd_retrain(args: argparse.Namespace) -> int:
    from ..config import default_usage_db
    from ..persistence.artifact import check_destination
    from ..training.loop.retrain import RetrainConfig, retrain

    check_destination(args.out)  # an unusable --out fails now, not after the refit
    if args.quiet:
        say = lambda s: None  # noqa: E731
    elif args.json:
        say = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    else:
        say = lambda s: print(s, flush=True)  # noqa: E731
    try:
        weights = _weights(args.origin_weight)
    except argparse.ArgumentTypeError as exc:
        print(f"router retrain: error: {exc}", file=sys.stderr)
        return 2
    settings = None
    if not args.no_track:
        from ..training.tracking.runs import connect, load_settings

        settings = load_settings(args.mlflow_config, tracking_uri=args.tracking_uri, experiment=args.experiment,
                                 registered_model=args.registered_model)
        connect(settings)
    cfg = RetrainConfig(usage_db=args.usage_db or default_usage_db(), base=args.router, out=Path(args.out),
                        since=parse_since(args.since), outcomes=[Path(p) for p in args.outcomes or []],
                        data=[Path(p) for p in args.data or []], embedder=args.embedder, cache=args.cache,
                        holdout=args.holdout, origin_weights=weights, cost_tolerance=args.cost_tolerance,
                        min_ess=args.min_ess, sample=args.sample, seed=args.seed)
    res = retrain(cfg, progress=say)
    if settings is not None:
        from ..training.tracking.loop import register_retrained

        from ..routing import Router

        reg = register_retrained(settings, res.candidate, res.report, res.promote, base=Router.load(args.router),
                                 progress=say)
        res.report["registry"] = reg
        res.promote = reg["promoted"]
        res.reasons = res.report["gate"]["reasons"]
    if args.json:
        print(json.dumps(res.report, indent=2, default=float))
    else:
        g = res.report["gate"]
        for side in ("base", "candidate"):
            if side in g:
                q, c = g[side]["quality"]["dr"], g[side]["cost"]["dr"]
                print(f"{side:<9} DR quality {q['value']:.4f} [{q['low']:.4f}, {q['high']:.4f}] ESS {q['ess']:.0f}"
                      f"  DR cost ${c['value']:.6f}")
        th = res.report["changed"]["task_head"]
        print(f"task head: {'refitted' if th['refit'] else 'kept'}; task labels per origin "
              f"{th['labels_by_origin'] or 'none'}; {th['predictions_changed']} training prompts change task"
              + (f" ({th['reason']})" if th.get("reason") else ""))
        print(f"gate: {g['verdict'].upper()}: " + "; ".join(res.reasons))
        print(f"candidate written to {res.path} (written whatever the gate says; the gate decides promotion)")
    return 0 if res.promote else 3


def register(sub: argparse._SubParsersAction) -> None:
    from ..training.fit.train import DEFAULT_EMBEDDER_SPEC

    p = sub.add_parser("retrain", help="retrain from usage-log feedback; gate the candidate off-policy",
                       description="Refit the quality and cost heads (and the task head where feedback "
                                   "carries task labels) from feedback in the usage log (and base "
                                   "training data), evaluate candidate vs base by IPS / SNIPS / doubly robust "
                                   "estimates on the newest held-back feedback, and write the candidate folder "
                                   "(always). Exit code 3 when the gate refuses.")
    p.add_argument("--usage-db", help="usage log URL (default: $ROUTER_USAGE_DB or sqlite:///router_usage.db)")
    p.add_argument("--router", required=True, help="BASE: a router folder or models:/NAME@champion")
    p.add_argument("--out", required=True, help="folder to write the candidate to")
    p.add_argument("--since", help="only feedback stored at or after this time (epoch seconds or ISO 8601)")
    p.add_argument("--outcomes", nargs="+", help="base outcome files (default: those the base names; 'none': none)")
    p.add_argument("--data", nargs="+", help="labelled prompt files for the task head (default: those BASE's "
                   "learned classifier names); refitted with feedback task labels when there are any")
    p.add_argument("--embedder", help=f"embedder when BASE has no learned classifier (default {DEFAULT_EMBEDDER_SPEC})")
    p.add_argument("--cache", help="embedding cache file ('' disables)")
    p.add_argument("--holdout", type=float, default=0.2, help="newest share of feedback held back for the gate")
    p.add_argument("--origin-weight", action="append", metavar="ORIGIN=W",
                   help="training weight of an origin (defaults human=1 import=1 judge=0.5 implicit=0.3)")
    p.add_argument("--cost-tolerance", type=float, default=0.0,
                   help="allowed relative cost increase over the base at the gate (default 0)")
    p.add_argument("--min-ess", type=float, default=10.0, help="fewest effective held-back rows to decide on")
    p.add_argument("--sample", type=positive_int, metavar="N",
                   help="keep about N feedback rows, sampled per (task, model) stratum with compensating "
                        "weights (bounds time and memory on a large log; default: every row)")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample's draw (default 0)")
    p.add_argument("--no-track", action="store_true", help="no MLflow: print the verdict, exit 3 on refusal")
    mlflow_flags(p)
    add_output_flags(p)
    p.set_defaults(func=cmd_retrain)

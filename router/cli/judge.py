"""``router judge --usage-db URL --judge-model M --sample N [--max-cost USD]``: grade logged answers
with a strong model and store them as ``origin=judge`` feedback (:mod:`router.serving.judge`).

Exit codes: 0 done (including a run the cost cap stopped early: the report says so), 1 an error
(unknown judge model, unreadable log or rubric), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys

from .main import add_output_flags, non_negative, positive_int
from .retrain import parse_since
from .stats import open_store

__all__ = ["register"]


def cmd_judge(args: argparse.Namespace) -> int:
    from ..catalog.model_catalog import ModelCatalog
    from ..config import default_catalog_path, default_usage_db
    from ..routing import Router
    from ..serving.client import RetryPolicy, RoutedClient
    from ..serving.judge import DEFAULT_RUBRIC, Rubric, run_judge

    say = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))  # noqa: E731
    rubric = Rubric.from_file(args.rubric, args.rubric_version) if args.rubric else DEFAULT_RUBRIC
    catalog = ModelCatalog.load(args.catalog or default_catalog_path())
    client = RoutedClient(Router.default(catalog), base_url=args.base_url, escalation=None, timeout=args.timeout,
                          retry=RetryPolicy(max_attempts=args.max_attempts, fallback_explicit=False))
    try:
        with open_store(args.usage_db or default_usage_db()) as store:
            rep = run_judge(client, store, args.judge_model, sample=args.sample, max_cost=args.max_cost,
                            rubric=rubric, max_output_tokens=args.max_output_tokens, since=parse_since(args.since),
                            seed=args.seed, dry_run=args.dry_run, progress=say)
    finally:
        client.close()
    if args.json:
        print(json.dumps(rep.to_dict(), indent=2, default=float))
        return 0
    print(f"judge {rep.judge_model}, rubric {rep.rubric['rubric_version']} ({rep.rubric['rubric_sha256'][:12]})")
    print(f"sampled {rep.sampled} of {rep.gradable} gradable answers; estimated ${rep.estimated_cost_usd:.4f}"
          + ("" if rep.max_cost_usd is None else f", cap ${rep.max_cost_usd:.4f}"))
    if args.dry_run:
        print("dry run: no call made")
        return 0
    print(f"graded {rep.graded}, spent ${rep.spent_usd:.4f}; {rep.failed} failed after retries, "
          f"{rep.unparsed} unparsable replies, {rep.stopped_by_cap} left ungraded by the cap")
    for e in rep.errors[:5]:
        print(f"  {e}", file=sys.stderr)
    a = rep.agreement
    if a.get("n"):
        print(f"agreement with human feedback on {a['n']} requests: {a['agree_rate']:.1%} agree, kappa "
              f"{a['kappa'] if a['kappa'] is not None else 'n/a'}, pearson {a['pearson'] if a['pearson'] is not None else 'n/a'}")
    else:
        print("agreement with human feedback: no request has both yet")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("judge", help="grade logged answers with a strong model (origin=judge feedback)",
                       description="Sample logged (prompt, answer) pairs (requests logged with --store-prompts "
                                   "and --store-responses), grade them with JUDGE_MODEL through the catalog's "
                                   "provider configuration (retries as the routed client does them), and store "
                                   "the grades as origin=judge feedback carrying the rubric's version and hash. "
                                   "The cost is estimated before any call and the cap enforced during.")
    p.add_argument("--usage-db", help="usage log URL (default: $ROUTER_USAGE_DB or sqlite:///router_usage.db)")
    p.add_argument("--judge-model", required=True, help="the grading model (a catalog model or alias)")
    p.add_argument("--sample", type=positive_int, required=True, help="how many ungraded answers to grade at most")
    p.add_argument("--max-cost", type=non_negative, metavar="USD",
                   help="spending cap in USD: no call is made that could pass it (default: no cap)")
    p.add_argument("--dry-run", action="store_true", help="sample and estimate the cost; make no call")
    p.add_argument("--rubric", help="rubric text file (default: the packaged rubric default-v1); it must ask "
                                    "for a final line 'SCORE: N', N from 1 to 10")
    p.add_argument("--rubric-version", help="version id of --rubric (default: FILE STEM-first 8 hex of its sha256)")
    p.add_argument("--since", help="only requests logged at or after this time (epoch seconds or ISO 8601)")
    p.add_argument("--max-output-tokens", type=positive_int, default=256, help="the judge's max_tokens (default 256)")
    p.add_argument("--max-attempts", type=positive_int, default=3, help="attempts per grading call (default 3)")
    p.add_argument("--timeout", type=non_negative, default=60.0, help="seconds per attempt (default 60)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    p.add_argument("--catalog", help="catalog YAML/JSON naming the judge model and its provider (default: "
                                     "$ROUTER_CATALOG, else the packaged catalog)")
    p.add_argument("--base-url", help="one OpenAI-compatible endpoint for every model (default: $ROUTER_BASE_URL, "
                                      "else each model's provider)")
    add_output_flags(p)
    p.set_defaults(func=cmd_judge)

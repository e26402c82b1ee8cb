"""The main job on the embedded defaults: route the demo prompts and print the savings table.

``python -m training.demo`` (what ``make demo`` runs).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from router import Router, RouterError
from router.config import PROJECT_ROOT
from router.errors import DataError
from router.savings import format_table, savings_report

DEMO_PROMPTS = PROJECT_ROOT / "data" / "demo_prompts.jsonl"


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


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.demo", description=__doc__)
    ap.add_argument("--router", help="router folder or URI (default: the cold-start router)")
    ap.add_argument("--tier", default=None)
    args = ap.parse_args(argv)
    try:
        router = Router.load(args.router) if args.router else Router.default()
        prompts = load_demo_prompts()
        for tier in ([args.tier] if args.tier else ["budget", "balanced", "quality"]):
            print(f"\n=== tier: {tier} ===")
            print(run(router, prompts, tier))
    except RouterError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

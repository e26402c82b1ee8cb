"""The ``router`` command: parse arguments, build library objects, print results.

Exit codes: 0 success, 1 a router error (bad catalog, artifact, request...), 2 bad usage.
Every subcommand takes ``--json`` for machine-readable output.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import RouterError

__all__ = ["main", "build_parser"]


def _load_router(args: argparse.Namespace):
    from ..routing import Router

    if getattr(args, "router", None):
        return Router.load(args.router)
    return Router.default(args.catalog)


def _prompts(values: Sequence[str]) -> list[str]:
    if list(values) == ["-"]:
        text = sys.stdin.read()
        return [line for line in text.splitlines() if line.strip()]
    return list(values)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def cmd_route(args: argparse.Namespace) -> int:
    r = _load_router(args)
    prompts = _prompts(args.prompts)
    decisions = r.route_many(
        prompts, tier=args.tier, min_quality=args.min_quality, max_cost=args.max_cost,
        max_quality_gap=args.max_quality_gap, max_tokens=args.max_tokens,
    )
    if args.json:
        _print_json([dict(prompt=p, **d.to_dict()) for p, d in zip(prompts, decisions)])
    else:
        for p, d in zip(prompts, decisions):
            print(f"{d.model}\t{d.task}\t({d.task_source}, {d.task_confidence:.2f})\t"
                  f"q={d.quality:.3f}\t${d.estimated_cost:.6f}\t{d.rule}\t{p[:60]!r}")
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    r = _load_router(args)
    prompts = _prompts(args.prompts)
    preds = r.classify(prompts)
    if args.json:
        _print_json([dict(prompt=p, **t.to_dict()) for p, t in zip(prompts, preds)])
    else:
        for p, t in zip(prompts, preds):
            print(f"{t.task}\t{t.confidence:.3f}\t{t.source}\t{t.complexity}\t{p[:60]!r}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from ..catalog.model_catalog import ModelCatalog

    catalog = ModelCatalog.load(args.catalog)
    if args.json:
        _print_json(catalog.to_dict())
        return 0
    print(f"{catalog.source}: {len(catalog)} models, valid")
    for m in catalog:
        caps = ",".join(sorted(m.capabilities))
        print(f"  {m.name:<20} ${m.pricing.input_per_1m:>7.3f} / ${m.pricing.output_per_1m:>7.3f} per 1M"
              f"  ctx {m.context_window:>7}  {caps}")
    return 0


def _add_common(p: argparse.ArgumentParser, *, router: bool = True) -> None:
    p.add_argument("--catalog", help="catalog YAML/JSON (default: router/catalog/default.yaml or $ROUTER_CATALOG)")
    if router:
        p.add_argument("--router", help="a saved router folder or registry URI (default: cold-start router)")
    p.add_argument("--json", action="store_true", help="machine-readable JSON output")


def _probability(text: str) -> float:
    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return v


def _non_negative(text: str) -> float:
    v = float(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return v


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return v


# Subcommands other modules add: name -> (module, function that registers the parser).
_EXTENSIONS: tuple[tuple[str, str], ...] = (("router.cli.training", "register"), ("router.cli.serve", "register"),
                                             ("router.cli.feedback", "register"), ("router.cli.retrain", "register"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="router", description="Route LLM requests to the cheapest good model.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("route", help="pick a model for each prompt", description="Pick a model for each prompt.")
    p.add_argument("prompts", nargs="+", help="prompts ('-' reads one prompt a line from stdin)")
    p.add_argument("--tier", help="budget | balanced | quality (default: the router's default tier)")
    p.add_argument("--min-quality", type=_probability, help="explicit quality target in [0, 1]")
    p.add_argument("--max-cost", type=_non_negative, help="cost cap per request, USD")
    p.add_argument("--max-quality-gap", type=_probability, help="cheapest model within this of the best")
    p.add_argument("--max-tokens", type=_positive_int, help="the request's max_tokens")
    _add_common(p)
    p.set_defaults(func=cmd_route)

    p = sub.add_parser("classify", help="task type of each prompt", description="Task type of each prompt.")
    p.add_argument("prompts", nargs="+", help="prompts ('-' reads one prompt a line from stdin)")
    _add_common(p)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("models", help="validate and list the catalog", description="Validate and list the catalog.")
    _add_common(p, router=False)
    p.set_defaults(func=cmd_models)

    for module, register in _EXTENSIONS:
        import importlib

        getattr(importlib.import_module(module), register)(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except RouterError as exc:
        print(f"router {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

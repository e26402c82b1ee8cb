"""The ``router`` command: parse arguments, build library objects, print results.

Exit codes: 0 success, 1 a router error (bad catalog, artifact, request...), 2 bad usage.
Every subcommand takes ``--json`` for machine-readable output.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import InvalidRequestError, RouterError

__all__ = ["main", "build_parser"]


def _load_router(args: argparse.Namespace):
    """The router by the one precedence (``--router`` > ``$ROUTER_MODEL`` > ``mlflow.yaml`` >
    cold start); one line on stderr when the configured router cannot load."""
    from ..persistence.resolve import CLI_ALIAS_MAX_AGE_S
    from ..routing import load_configured

    resolved = load_configured(args.router, catalog=args.catalog, alias_max_age_s=CLI_ALIAS_MAX_AGE_S)
    if resolved.fallback:
        progress(args)(f"router {args.command}: using the {resolved.describe()}")
    return resolved.router


def progress(args: argparse.Namespace):
    """The reporter of a subcommand: stderr, tqdm bars on a terminal, nothing with ``--quiet``."""
    from ..progress import for_cli

    return for_cli(quiet=bool(getattr(args, "quiet", False)))


def _prompts(values: Sequence[str]) -> list[str]:
    if list(values) == ["-"]:
        text = sys.stdin.read()
        prompts = [line for line in text.splitlines() if line.strip()]
        if not prompts:
            raise InvalidRequestError("no prompts: stdin was empty ('-' reads one prompt a line)")
        return prompts
    return list(values)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def _check_window(router: Any, prompts: Sequence[str], max_tokens: int | None) -> None:
    """prompt + max_tokens must fit some model's context window: say so rather than clip."""
    if max_tokens is None:
        return
    from ..text.request import estimate_tokens

    largest = max(router.catalog, key=lambda m: m.context_window)
    need = max_tokens + max(estimate_tokens(p) for p in prompts)
    if need > largest.context_window:
        raise InvalidRequestError(
            f"--max-tokens {max_tokens}: prompt + max_tokens ({need:,} tokens) exceed every model's context "
            f"window (the largest is {largest.context_window:,} tokens, {largest.name})")


#: Prompts routed per call when many come from stdin (progress is reported per chunk).
_BULK = 256


def cmd_route(args: argparse.Namespace) -> int:
    from ..savings import format_usd

    prompts = _prompts(args.prompts)
    r = _load_router(args)
    _check_window(r, prompts, args.max_tokens)
    def route(part: Sequence[str]) -> list:
        return r.route_many(part, tier=args.tier, min_quality=args.min_quality, max_cost=args.max_cost,
                            max_quality_gap=args.max_quality_gap, max_tokens=args.max_tokens)

    if len(prompts) > _BULK:  # thousands of prompts from stdin: report progress per chunk
        from ..progress import in_chunks

        decisions = [d for part in in_chunks(route, prompts, progress(args), f"routing {len(prompts)} prompts",
                                             _BULK) for d in part]
    else:
        decisions = route(prompts)
    if args.json:
        _print_json([dict(prompt=p, **d.to_dict()) for p, d in zip(prompts, decisions)])
    else:
        for p, d in zip(prompts, decisions):
            print(f"{d.model}\t{d.task}\t({d.task_source}, {d.task_confidence:.2f})\t"
                  f"q={d.quality:.3f}\t{format_usd(d.estimated_cost)}\t{d.rule}\t{p[:60]!r}")
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    prompts = _prompts(args.prompts)
    r = _load_router(args)
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
    p.add_argument("--catalog", help="catalog YAML/JSON (default: $ROUTER_CATALOG, else the packaged "
                                     "router/catalog/default.yaml); used by the cold-start router")
    if router:
        add_router_flag(p)
    add_output_flags(p)


def add_router_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--router", metavar="FOLDER|URI",
                   help="a router folder, models:/NAME@ALIAS, models:/NAME/VERSION, runs:/... or 'cold-start' "
                        "(default: $ROUTER_MODEL, else the router: entry of mlflow.yaml, "
                        "else models:/llm-router@champion, else the cold-start router)")


def add_output_flags(p: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    """``--json`` and ``--quiet``, which every subcommand takes."""
    if json_flag:
        p.add_argument("--json", action="store_true", help="machine-readable JSON output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or notices on stderr (errors still)")


def _number(text: str, kind: type = float) -> Any:
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None


def probability(text: str) -> float:
    v = _number(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}")
    return v


def non_negative(text: str) -> float:
    v = _number(text)
    if not v >= 0:  # also NaN
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return v


def positive_int(text: str) -> int:
    v = _number(text, int)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return v


# Subcommands other modules add: name -> (module, function that registers the parser).
# One line a command group; each module's ``register(sub)`` adds its subparsers.
_EXTENSIONS: tuple[tuple[str, str], ...] = (
    ("router.cli.training", "register"),
    ("router.cli.serve", "register"),
    ("router.cli.stats", "register"),
    ("router.cli.feedback", "register"),
    ("router.cli.retrain", "register"),
    ("router.cli.judge", "register"),
    ("router.cli.drift", "register"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="router", description="Route LLM requests to the cheapest good model.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("route", help="pick a model for each prompt", description="Pick a model for each prompt.")
    p.add_argument("prompts", nargs="+", help="prompts ('-' reads one prompt a line from stdin)")
    p.add_argument("--tier", help="budget | balanced | quality (default: the router's default tier)")
    p.add_argument("--min-quality", type=probability, metavar="Q", help="explicit quality target in [0, 1]")
    p.add_argument("--max-cost", type=non_negative, metavar="USD", help="cost cap per request, USD")
    p.add_argument("--max-quality-gap", type=probability, metavar="GAP",
                   help="the cheapest model within GAP of the best predicted quality")
    p.add_argument("--max-tokens", type=positive_int, metavar="N",
                   help="the request's max_tokens: prompt + N must fit the chosen model's context window")
    _add_common(p)
    p.set_defaults(func=cmd_route)

    p = sub.add_parser("classify", help="task type of each prompt", description="Task type of each prompt.")
    p.add_argument("prompts", nargs="+", help="prompts ('-' reads one prompt a line from stdin)")
    _add_common(p)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("models", help="validate and list the catalog", description="Validate and list the catalog.")
    _add_common(p, router=False)
    p.set_defaults(func=cmd_models)

    import importlib

    for module, register in _EXTENSIONS:
        getattr(importlib.import_module(module), register)(sub)
    return parser


#: Documented MLflow settings that ``--quiet`` sets for the command's duration (its INFO lines
#: and artifact download/upload bars).
_QUIET_MLFLOW = {"MLFLOW_LOGGING_LEVEL": "WARNING", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


@contextmanager
def _quiet_libraries(quiet: bool) -> Iterator[None]:
    """With ``--quiet``, libraries' own progress and INFO logs are off too; restored after."""
    if not quiet:
        yield
        return
    import logging
    import os

    saved_env = {k: os.environ.get(k) for k in _QUIET_MLFLOW}
    loggers = [logging.getLogger(n) for n in ("mlflow", "alembic")]
    saved_levels = [lg.level for lg in loggers]
    os.environ.update(_QUIET_MLFLOW)
    for lg in loggers:  # when mlflow is already imported, its loggers are configured already
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for lg, level in zip(loggers, saved_levels):
            lg.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        with _quiet_libraries(bool(getattr(args, "quiet", False))):
            return func(args)
    except RouterError as exc:
        print(f"router {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

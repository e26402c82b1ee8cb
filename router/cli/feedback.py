"""``router feedback import FILE.jsonl --usage-db URL [--strict]``: bulk feedback into the usage log.

Exit codes: 0 imported (bad lines, if any, reported on stderr and skipped), 1 refused (``--strict``
with a bad line, a missing file, an unreadable database), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys

from .main import add_output_flags

__all__ = ["register"]


def cmd_feedback_import(args: argparse.Namespace) -> int:
    from ..config import default_usage_db
    from ..serving.usage.importer import import_feedback
    from ..serving.usage.store import UsageStore

    models = None
    if args.router:
        from ..routing import Router

        models = Router.load(args.router).models
    elif args.catalog:
        from ..catalog.model_catalog import ModelCatalog

        models = ModelCatalog.load(args.catalog).names
    with UsageStore(args.usage_db or default_usage_db()) as store:
        report = import_feedback(store, args.file, strict=args.strict, default_origin=args.origin, models=models)
    for line, err in report.errors:
        print(f"{args.file}:{line}: {err}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        kinds = ", ".join(f"{v} {k}" for k, v in sorted(report.by_kind.items())) or "nothing"
        print(f"imported {report.imported} of {report.rows} rows ({kinds}); {len(report.errors)} bad line(s) "
              f"skipped" + (" (see above)" if report.errors else ""))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("feedback", help="feedback for the learning loop (import)",
                       description="Feedback for the learning loop.")
    fsub = p.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    q = fsub.add_parser("import", help="import feedback rows from a JSONL file",
                        description="Import {request_id, score, task?} rows or full outcome rows (prompt_id, prompt, "
                                    "model, score, cost?, prompt_tokens?, completion_tokens?, propensity?, task?, "
                                    "created_at?, answer?, source?, origin?) in one transaction. Scores are in "
                                    "[0, 1]; 'thumbs': up|down and 'rating': 1..10 map onto it.")
    q.add_argument("file", help="JSONL file")
    q.add_argument("--usage-db", help="usage log URL (default: $ROUTER_USAGE_DB or sqlite:///router_usage.db)")
    q.add_argument("--strict", action="store_true", help="refuse the whole file when any line is bad")
    q.add_argument("--origin", default="import", choices=["import", "human", "implicit"],
                   help="origin of rows that name none (default: import)")
    q.add_argument("--router", help="reject models not in this router's catalog")
    q.add_argument("--catalog", help="reject models not in this catalog")
    add_output_flags(q)
    q.set_defaults(func=cmd_feedback_import)

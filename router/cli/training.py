"""The training subcommands of the ``router`` CLI: ``train`` and ``eval-tasks``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..training.fit.train import DEFAULT_EMBEDDER_SPEC, TASK_ONLY_EMBEDDER_SPEC
from .main import non_negative, add_output_flags, positive_int, progress

__all__ = ["register"]


def cmd_train(args: argparse.Namespace) -> int:
    from ..persistence.artifact import check_destination
    from ..training.fit.train import TrainConfig, train_router

    check_destination(args.out)  # an unusable --out fails now, not after the training
    finetune = {}
    if args.finetune_encoder:  # TrainConfig refuses a used folder before any training
        from ..training.fit.encoder import FinetuneParams

        finetune = {"finetune_encoder": Path(args.finetune_encoder),
                    "finetune_params": FinetuneParams(epochs=args.finetune_epochs, layers=args.finetune_layers)}
    cfg = TrainConfig(
        out=Path(args.out), task_files=[Path(p) for p in args.data] if args.data else None,
        use_shared=not args.no_shared, embedder=args.embedder, head=args.head, head_params={"C": args.C},
        threshold=args.threshold, cache=args.cache,
        catalog=Path(args.catalog) if args.catalog else None,
        outcomes=[Path(p) for p in args.outcomes or []], quality_head=args.quality_head,
        quality_C=args.quality_C, validation_percent=args.validation_percent, **finetune,
    )
    from ..training.fit.tasks import describe_gate

    say = progress(args)
    settings = None
    if not args.no_track:  # fail on a bad config or unreachable server before hours of training
        from ..training.tracking.runs import connect, load_settings

        settings = load_settings(args.mlflow_config, tracking_uri=args.tracking_uri, experiment=args.experiment,
                                 registered_model=args.registered_model)
        connect(settings)
    res = train_router(cfg, progress=say)
    summary = {"path": str(res.path), "class_counts": res.class_counts, "threshold": res.threshold,
               "seconds": res.seconds, "data_files": res.data_files}
    if settings is not None:
        from ..training.tracking.runs import track_training

        summary["registered"] = track_training(settings, cfg, res, say)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        tuned = f"fine-tuning the encoder {res.seconds['finetune']}s, " if cfg.finetune_encoder else ""
        print(f"trained in {res.seconds['total']}s ({tuned}embedding {res.seconds['embed']}s); {describe_gate(res.threshold)}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from ..training.tracking.runs import load_settings, promote

    settings = load_settings(args.mlflow_config, tracking_uri=args.tracking_uri,
                             registered_model=args.registered_model)
    res = promote(settings, force=args.force, progress=progress(args))
    if args.json:
        print(json.dumps(res.__dict__, indent=2, default=str))
    else:
        print(f"{'promoted' if res.promoted else 'refused'}: challenger v{res.challenger}, champion now "
              f"v{res.champion_after} ({res.reason})")
    return 0 if res.promoted else 3


def cmd_rollback(args: argparse.Namespace) -> int:
    from ..training.tracking.runs import load_settings, rollback

    settings = load_settings(args.mlflow_config, tracking_uri=args.tracking_uri,
                             registered_model=args.registered_model)
    version = rollback(settings, progress=progress(args))
    print(json.dumps({"champion": version}) if args.json else f"champion is now v{version}")
    return 0


def mlflow_flags(p: argparse.ArgumentParser, experiment: bool = True) -> None:
    p.add_argument("--mlflow-config", help="MLflow settings file (default: mlflow.yaml)")
    p.add_argument("--tracking-uri", help="overrides $MLFLOW_TRACKING_URI and mlflow.yaml")
    if experiment:
        p.add_argument("--experiment", help="MLflow experiment of the run (default: mlflow.yaml's, llm-router)")
    p.add_argument("--registered-model", help="registered model name (default: mlflow.yaml's, llm-router)")


def _holds_finetuned(spec) -> bool:
    """Whether an embedder config names a fine-tuned encoder anywhere inside it."""
    from ..embedders.bundle import folder_encoders

    return any(node["type"] == "finetuned" for node in folder_encoders(spec))


def cmd_eval_tasks(args: argparse.Namespace) -> int:
    from ..errors import DataError
    from ..embedders import make_embedder, with_cache
    from ..training.embedding import featurize_with_progress

    from ..training.data.datasets import shared_data_dir, default_overrides, default_task_files, load_labelled
    from ..training.evaluate.tasks import evaluate_heads

    say = progress(args)
    files = [Path(p) for p in args.data] if args.data else default_task_files(None if args.no_shared else shared_data_dir())
    ds = load_labelled(files, overrides=None if args.original_labels else default_overrides())
    say(f"data: {ds.summary()}")
    emb = make_embedder(args.embedder)
    if _holds_finetuned(emb.to_config()):
        say(f"note: {emb.name} holds an encoder fine-tuned on labelled collections (the packaged one on all "
            "of these): its leave-source-out numbers here are not held out; bench/bench_gated.py holds "
            "collections out of the fine-tuning too")
        report_note = "fine-tuned encoder: not held out"
    else:
        report_note = None
    X = featurize_with_progress(with_cache(emb, args.cache), ds.prompts, say, f"embedding {len(ds)} prompts")
    heads = []
    for spec in args.heads.split(","):
        name, _, rest = spec.partition(":")
        params = {}
        for kv in filter(None, rest.split(";")):
            k, eq, v = kv.partition("=")
            try:
                params[k] = float(v) if "." in v else int(v)
            except ValueError:
                raise DataError(f"--heads {spec!r}: {kv!r} is not KEY=NUMBER") from None
        heads.append((name, params))
    report = evaluate_heads(ds, X, heads, collections=args.collections.split(",") if args.collections else None,
                            weight_power=args.weight_power, out_dir=Path(args.out), progress=say)
    report["embedder"] = emb.name
    if report_note:
        report["note"] = report_note
    Path(args.out, "task_eval.json").write_text(json.dumps(report, indent=2))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"regex: accuracy {report['regex']['accuracy']:.3f}")
        for k, v in report["heads"].items():
            print(f"{k}: accuracy {v['gated']['accuracy']:.3f} macro-F1 {v['gated']['macro_f1']:.3f} gate {v['gate']}")
            for c, m in v["per_collection"].items():
                print(f"    {c:<22} n={m['n']:<5} accuracy {m['accuracy']:.3f}  regex {m['regex_accuracy']:.3f}")
            if v.get("non_english"):
                ne = v["non_english"]
                print(f"    non-English n={ne['n']} accuracy {ne['accuracy']:.3f}; predicted translation "
                      f"{ne['predicted_translation_share']:.1%} (true {ne['true_translation_share']:.1%})")
        print(f"report: {Path(args.out) / 'task_eval.json'}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    if args.cascade:
        from ..training.evaluate.cascade_report import print_cascade_report, run_cascade_eval

        report = run_cascade_eval(args.router, [Path(p) for p in args.outcomes], out_dir=Path(args.out),
                                  validation_percent=None if args.all_rows else args.validation_percent,
                                  progress=progress(args))
        print_cascade_report(report, as_json=args.json)
        return 0
    from ..training.evaluate.report import run_eval

    report = run_eval(args.router, [Path(p) for p in args.outcomes], out_dir=Path(args.out),
                      pair=tuple(args.pair.split(",")) if args.pair else None,
                      validation_percent=None if args.all_rows else args.validation_percent,
                      cache=args.cache, progress=progress(args))
    if args.json:
        print(json.dumps(report, indent=2, default=float))
        return 0
    print(f"{report['prompts']} prompts, {len(report['models'])} models; best single model "
          f"{report['best_single_model']} {report['single_models'][report['best_single_model']]}")
    print(f"oracle {report['oracle']}  random {report['random']}")
    print(f"mix of single models: AIQ {report['mix_single_models_aiq']:.4f}")
    for name, r in report["routers"].items():
        line = (f"{name:<12} AIQ {r['aiq']:.4f} (threshold {r['threshold']['aiq']:.4f}, gap {r['gap']['aiq']:.4f}, "
                f"value {r['value']['aiq']:.4f}); max quality {r['max_quality']:.4f}"
                f"  matches best at {_pct(r['cost_to_match_best_ratio'])} of its cost")
        if "pair" in r:
            pr = r["pair"]
            line += f"  APGR {pr['apgr']:.3f} CPT50 {_pct(pr['cpt50'])} CPT80 {_pct(pr['cpt80'])}"
        print(line)
    print(f"report: {report['report_json']}\nplot: {report['plot_png']}")
    return 0


def _percent(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer percentage, got {text!r}") from None
    if not 0 <= v < 100:
        raise argparse.ArgumentTypeError(f"must be a percentage in 0..99, got {text!r}")
    return v


def _pct(x) -> str:
    return "never" if x is None else f"{100 * x:.0f}%"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a router and save it to a folder",
                       description="Train the learned task classifier and save a router folder.")
    p.add_argument("--out", required=True, help="folder to write the router to")
    p.add_argument("--data", nargs="+", help="labelled JSONL files (default: data/prompts + ../shared/data)")
    p.add_argument("--no-shared", action="store_true", help="ignore ../shared/data")
    p.add_argument("--embedder",
                   help=f"default: {TASK_ONLY_EMBEDDER_SPEC} (English prompts to the fine-tuned task encoder, the "
                        f"others to the frozen pipeline; 'gated' for short) without --outcomes, {DEFAULT_EMBEDDER_SPEC} "
                        "with them (the quality heads read these features) | minilm+use@views (torch) | minilm-onnx+use | minilm | use | "
                        "hashing | task-minilm (fine-tuned, shipped; task-minilm:DIR: one built by --finetune-encoder) | gated-fast (task-minilm|use@views: bounded cost for "
                        "the other languages, ~1 point less accurate on them) | 'static:DIR/use+static:DIR/minilm@views' (fast; "
                        "build DIR with python -m router.training.fit.static DIR) | a sentence-transformers id/path; "
                        "'@views' adds first/last-sentence embeddings; 'A|B': English prompts to A, the others to B")
    p.add_argument("--finetune-encoder", metavar="DIR",
                   help="first fine-tune the English task encoder on this run's labelled data into DIR (new or "
                        "empty; GPU when present, ~22 minutes on 2 CPU cores), then read English prompts with it "
                        "(task-minilm:DIR|the gated other side); not with --embedder")
    p.add_argument("--finetune-epochs", type=positive_int, default=3, help="with --finetune-encoder (default 3)")
    p.add_argument("--finetune-layers", type=positive_int,
                   help="with --finetune-encoder: keep the base model's first N layers (default all 6)")
    p.add_argument("--head", default="logreg", choices=["logreg", "knn", "mlp"],
                   help="task-classifier head on the embeddings (default logreg)")
    p.add_argument("--C", type=non_negative, default=1.0, help="logistic-regression inverse regularisation")
    p.add_argument("--threshold", type=non_negative,
                   help="confidence gate: below it the regex answers; 0: the regex never answers "
                        "(default: calibrated by leave-source-out)")
    p.add_argument("--cache", help="embedding cache file ('' disables; default .cache/embeddings.sqlite)")
    p.add_argument("--catalog", help="catalog YAML/JSON (must hold the outcome models, e.g. models/routerbench.yaml)")
    p.add_argument("--outcomes", nargs="+", help="outcome files (RouterBench CSV, RouteLLM CSV, JSONL) for quality/cost")
    p.add_argument("--quality-head", default="logreg", choices=["logreg", "mlp"],
                   help="per-model quality head fitted on --outcomes (default logreg)")
    p.add_argument("--quality-C", type=non_negative, default=0.1,
                   help="inverse regularisation of the logreg quality heads (default 0.1)")
    p.add_argument("--validation-percent", type=_percent, default=20,
                   help="outcome prompts held out (by id hash) for `router eval` (default 20)")
    p.add_argument("--no-track", action="store_true", help="do not log to MLflow or register a version")
    mlflow_flags(p)
    add_output_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("promote", help="move @champion to the challenger if it passes the gate",
                       description="Evaluate challenger and champion on the gate data; promote only if not worse. "
                                   "Exit code 3 when the gate refuses.")
    p.add_argument("--force", action="store_true", help="promote even if the gate refuses (logged)")
    mlflow_flags(p, experiment=False)
    add_output_flags(p)
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("rollback", help="point @champion back at the previous champion",
                       description="Point the champion alias at the previous champion version.")
    mlflow_flags(p, experiment=False)
    add_output_flags(p)
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("eval", help="evaluate routing on held-out outcomes (AIQ, APGR, curves, baselines)",
                       description="Evaluate a trained router on the held-out split of outcome files.")
    p.add_argument("--router", required=True, help="trained router folder or URI")
    p.add_argument("--outcomes", nargs="+", required=True,
                   help="outcome files (RouterBench CSV, RouteLLM CSV, JSONL) to evaluate on")
    p.add_argument("--pair", help="STRONG,WEAK models for APGR/CPT (default: dearest and cheapest)")
    p.add_argument("--validation-percent", type=_percent, default=20,
                   help="the held-out share of outcome prompts, as in `router train` (default 20)")
    p.add_argument("--all-rows", action="store_true", help="evaluate on every row, not the held-out split")
    p.add_argument("--cascade", action="store_true",
                   help="evaluate the scored cascade (outcome files with answers): quality vs total cost paid")
    p.add_argument("--cache", help="embedding cache file ('' disables; default .cache/embeddings.sqlite)")
    p.add_argument("--out", default="reports/routing", help="folder for routing_eval.json and the plot")
    add_output_flags(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("eval-tasks", help="leave-source-out evaluation of task-classifier heads",
                       description="Leave-source-out evaluation of the task classifier, regex on the same rows.")
    p.add_argument("--data", nargs="+", help="labelled JSONL files (default: data/prompts + ../shared/data)")
    p.add_argument("--no-shared", action="store_true", help="ignore ../shared/data")
    p.add_argument("--embedder", default=DEFAULT_EMBEDDER_SPEC, help=f"embedder spec (default {DEFAULT_EMBEDDER_SPEC}; "
                                                                     "see `router train --help`)")
    p.add_argument("--heads", default="logreg:C=1.0", help="comma-separated name:k=v;k=v (logreg, knn, mlp)")
    p.add_argument("--collections", help="comma-separated collections to hold out (default: the real ones)")
    p.add_argument("--weight-power", type=non_negative, default=0.75,
                   help="rows weighted by (collection size)^-POWER so big templated sets do not dominate")
    p.add_argument("--original-labels", action="store_true", help="ignore data/label_review corrections")
    p.add_argument("--cache", help="embedding cache file ('' disables; default .cache/embeddings.sqlite)")
    p.add_argument("--out", default="reports/tasks", help="folder for task_eval.json and confusion PNGs")
    add_output_flags(p)
    p.set_defaults(func=cmd_eval_tasks)

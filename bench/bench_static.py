"""Static token-embedding encoders against the frozen default (issue 16): leave-source-out task
accuracy per collection and per length band, and a two-stage classifier (static first, the
default only below a confidence) as a curve of (share sent to the default, accuracy).

The recipe's fine-tuned MiniLM table is evaluated honestly: for each held-out collection the
table is fine-tuned on the other collections only (``--finetuned``; ~10 minutes on 2 cores).

Same rows, label overrides, collections and head (logreg C=1, rows weighted by collection
size^-0.75) as `router eval-tasks`. The distilled (not fine-tuned) static folders are built into
``--static`` (default .cache/static-distilled) when missing.

    python bench/bench_static.py [--static DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHARED_REAL = ("arena_hard_v0.1", "self_instruct_user", "self_instruct_seed")
BANDS = ((0, 200, "0-200"), (200, 1000, "200-1000"), (1000, 10**9, "1000-"))


def summary(ds, res) -> dict:
    idx = res.index
    ok = res.y_true == res.y_pred
    coll = np.array([ds.rows[i].collection for i in idx])
    lens = np.array([len(ds.rows[i].prompt) for i in idx])
    eng = np.array([not (ds.rows[i].lang and ds.rows[i].lang != "en") for i in idx])  # as eval-tasks
    shared = np.isin(coll, SHARED_REAL)
    out = {"pooled": round(float(ok.mean()), 4), "shared_real": round(float(ok[shared].mean()), 4),
           "non_english": round(float(ok[~eng].mean()), 4), "english": round(float(ok[eng].mean()), 4),
           "per_collection": {c: [int((coll == c).sum()), round(float(ok[coll == c].mean()), 4)]
                              for c in dict.fromkeys(coll)},
           "per_length": {name: [int(((lens >= lo) & (lens < hi)).sum()), round(float(ok[(lens >= lo) & (lens < hi)].mean()), 4)]
                          for lo, hi, name in BANDS}}
    return out


def ensure_static(folder: Path) -> None:
    """Build the recipe's static folders under ``folder`` when they are not there yet."""
    from router.training.fit.static import build_static

    for teacher in ("use", "minilm"):
        if not (folder / teacher / "static.json").is_file():
            print(f"building {folder / teacher} ...", flush=True)
            build_static(folder / teacher, teacher)


class _Folds:
    """What ``leave_source_out`` returns, for the per-fold fine-tuned variant."""

    def __init__(self, index, y_true, y_pred, confidence):
        self.index, self.y_true, self.y_pred, self.confidence = index, y_true, y_pred, confidence


def loso_finetuned(ds, d: Path, tmp: Path):
    """Leave-source-out with the MiniLM table fine-tuned on each fold's training collections."""
    import shutil

    from router.embedders import make_embedder
    from router.tasks.classifier import featurize
    from router.training.fit.static import finetune_static
    from router.training.fit.tasks import REAL_COLLECTIONS, _fit, make_head, sample_weights

    from router.embedders.static import StaticEmbedder

    if StaticEmbedder(d / "minilm").config.get("recipe", {}).get("finetuned"):
        raise SystemExit(f"{d / 'minilm'} is already fine-tuned (on every collection): give distilled folders")
    coll = np.array([r.collection for r in ds.rows])
    y = np.array(ds.tasks)
    w = sample_weights(ds, 0.75)
    idx, pred, conf = [], [], []
    for c in [c for c in REAL_COLLECTIONS if (coll == c).any()]:
        test = coll == c
        fold = tmp / "minilm"
        shutil.rmtree(fold, ignore_errors=True)
        shutil.copytree(d / "minilm", fold)
        train = np.flatnonzero(~test)
        finetune_static(fold, [ds.prompts[i] for i in train], list(y[train]), w[train])
        X = featurize(make_embedder(f"static:{d}/use+static:{fold}@views"), ds.prompts)
        head = _fit(make_head("logreg", C=1.0), X[~test], y[~test], w[~test])
        p = head.predict_proba(X[test])
        idx.append(np.flatnonzero(test))
        pred.append(np.array([str(k) for k in head.classes_])[p.argmax(1)])
        conf.append(p.max(1))
        print(f"  {c}: {float((pred[-1] == y[test]).mean()):.3f}", flush=True)
    index = np.concatenate(idx)
    return _Folds(index, y[index], np.concatenate(pred), np.concatenate(conf))


def main() -> None:
    from router.embedders import make_embedder, with_cache
    from router.tasks.classifier import featurize
    from router.training.data.datasets import default_overrides, default_task_files, load_labelled, shared_data_dir
    from router.training.fit.tasks import leave_source_out, make_head

    ap = argparse.ArgumentParser()
    ap.add_argument("--static", default=".cache/static-distilled")
    ap.add_argument("--default", default="minilm-onnx+use@views")
    ap.add_argument("--cache", default=".cache/embeddings.sqlite")
    ap.add_argument("--json")
    ap.add_argument("--finetuned", action="store_true", help="also the recipe's fine-tuned MiniLM table, per fold")
    args = ap.parse_args()
    d = Path(args.static)
    ensure_static(d)
    variants = {
        "static use @views": f"static:{d}/use@views",
        "static use+minilm @views": f"static:{d}/use+static:{d}/minilm@views",
        "default (frozen)": args.default,
    }
    ds = load_labelled(default_task_files(shared_data_dir()), overrides=default_overrides())
    report, results = {"rows": len(ds), "variants": {}}, {}
    for name, spec in variants.items():
        t = time.perf_counter()
        X = featurize(with_cache(make_embedder(spec), "" if spec.startswith("static") else args.cache), ds.prompts)
        res = leave_source_out(ds, X, lambda: make_head("logreg", C=1.0), weight_power=0.75)
        results[name] = res
        report["variants"][name] = {"embedder": spec, **summary(ds, res), "seconds": round(time.perf_counter() - t, 1)}
        print(name, {k: v for k, v in report["variants"][name].items() if not isinstance(v, dict)}, flush=True)
    if args.finetuned:
        import tempfile

        t = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            res = loso_finetuned(ds, d, Path(tmp))
        name = "static use + minilm fine-tuned per fold @views"
        report["variants"][name] = {**summary(ds, res), "seconds": round(time.perf_counter() - t, 1)}
        print(name, {k: v for k, v in report["variants"][name].items() if not isinstance(v, dict)}, flush=True)
    # two stages: the static head answers when its top probability is >= tau, else the default's
    first, second = results["static use+minilm @views"], results["default (frozen)"]
    assert (first.index == second.index).all()
    curve = []
    for tau in (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 1.01):
        to_default = first.confidence < tau
        pred = np.where(to_default, second.y_pred, first.y_pred)
        ok = pred == first.y_true
        coll = np.array([ds.rows[i].collection for i in first.index])
        curve.append({"tau": tau, "share_to_default": round(float(to_default.mean()), 3),
                      "pooled": round(float(ok.mean()), 4),
                      "shared_real": round(float(ok[np.isin(coll, SHARED_REAL)].mean()), 4)})
        print(curve[-1], flush=True)
    report["two_stage"] = curve
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

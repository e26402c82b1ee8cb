"""Early exit (issue 16, measured, not built): could an English prompt stop after the first k of
the fine-tuned encoder's 6 layers when a head on that layer is sure, and the rest run only for
the others?

The encoder (fine-tuned with the held-out group out of it, as ``bench_gated.py`` builds it) is
read after each of its first layers (mean-pooled hidden states, the ONNX int8 export's own
tensors); a logistic regression per layer is fitted on the training rows (class-balanced x
collection size^-0.75, as the task head), and a held-out English prompt exits at layer k when its
top probability is at least tau, keeping the full gated classifier's answer otherwise. Reported
per layer and tau: the share of held-out English prompts that exit, the accuracy of the mixed
answers (pooled, English, shared real) against the full classifier's, the share of the realistic
length mix's English prompts that would exit, and the time of the first k layers alone (a
sub-graph of the same ONNX file, one prompt at a time on the mix) against all 6.

    python bench/bench_early_exit.py --encoder DIR [--layers 2,3,4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_gated import GROUP, SHARED_REAL  # noqa: E402

HIDDEN = "/inner/encoder/layer.{k}/output/LayerNorm/LayerNormalization_output_0"
TAUS = (0.8, 0.9, 0.95, 0.98)


def layer_model(src: Path, layers: list[int], out: Path) -> dict[int, str]:
    """Copy of the ONNX file ``src`` with the hidden state after each of ``layers`` (1-based) as
    an extra output, written to ``out``; returns layer -> output name."""
    import onnx

    m = onnx.load(str(src))
    produced = {o for n in m.graph.node for o in n.output}
    names = {k: HIDDEN.format(k=k - 1) for k in layers}
    for k, name in names.items():
        if name not in produced:
            raise SystemExit(f"{src} has no tensor {name!r}: not an export of router.embedders.finetuned")
        m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    onnx.save(m, str(out))
    return names


def pooled_layers(enc, session, names: dict[int, str], texts: list[str]) -> dict[int, np.ndarray]:
    """Mean-pooled hidden states after each layer of ``names``: layer -> array (n, d)."""
    out: dict[int, np.ndarray] = {}
    for part, feeds in enc.batches(texts):
        m = feeds["attention_mask"][..., None]
        for k, h in zip(names, session.run(list(names.values()), feeds)):
            out.setdefault(k, np.zeros((len(texts), h.shape[-1]), np.float32))
            out[k][part] = (h * m).sum(1) / m.sum(1)
    return out


def time_layers(enc, src: Path, k: int | None, texts: list[str], tmp: Path) -> tuple[float, float]:
    """p50 / p99 ms of the first ``k`` layers (all with ``None``), one text at a time."""
    import onnx.utils
    import onnxruntime as ort

    from router.embedders.device import onnx_session_options

    path = src
    if k is not None:
        path = tmp / f"first{k}.onnx"
        onnx.utils.extract_model(str(src), str(path), ["input_ids", "attention_mask"], [HIDDEN.format(k=k - 1)])
    sess = ort.InferenceSession(str(path), onnx_session_options(None), providers=["CPUExecutionProvider"])
    lat = []
    for t in texts[:20] + texts:  # the first 20 warm up
        (_, feeds), = enc.batches([t])
        start = time.perf_counter()
        sess.run(None, feeds)
        lat.append((time.perf_counter() - start) * 1000)
    lat = sorted(lat[20:])
    return round(statistics.median(lat), 2), round(lat[int(0.99 * len(lat))], 2)


def english_only(texts: list[str]) -> list[str]:
    """The texts the language gate reads as English."""
    from router.text.language import english_mask

    return [t for t, e in zip(texts, english_mask(texts)) if e]


def main() -> None:
    from sklearn.linear_model import LogisticRegression

    from bench_encoder import length_mix, pool_prompts
    from router.embedders import GatedEmbedder, make_embedder, with_cache
    from router.embedders.finetuned import ONNX_FILE, FinetunedEmbedder
    from router.text.language import english_mask
    from router.training.data.datasets import LabelledSet, default_overrides, default_task_files, load_labelled, shared_data_dir
    from router.training.fit.encoder import class_balanced_weights
    from router.training.fit.tasks import fit_task_classifier

    ap = argparse.ArgumentParser()
    ap.add_argument("--encoder", required=True, type=Path, help="task encoder folder fine-tuned without the group")
    ap.add_argument("--layers", default="2,3,4")
    ap.add_argument("--held-out", default=",".join(GROUP))
    ap.add_argument("--other", default="minilm-onnx:128+use@views")
    ap.add_argument("--cache", default=".cache/embeddings.sqlite")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--timing-only", action="store_true", help="only time the first layers (no fitting)")
    args = ap.parse_args()
    held = tuple(args.held_out.split(","))
    layers = [int(k) for k in args.layers.split(",")]
    enc = FinetunedEmbedder(args.encoder)
    if set(enc.config.get("held_out", ())) != set(held):
        raise SystemExit(f"{args.encoder} was not fine-tuned with exactly this group held out")
    if args.timing_only:
        mix = english_only(length_mix(pool_prompts(), 300))
        with tempfile.TemporaryDirectory() as tmp:
            times = {str(k): time_layers(enc, args.encoder / ONNX_FILE, k, mix, Path(tmp)) for k in layers}
            times["all"] = time_layers(enc, args.encoder / ONNX_FILE, None, mix, Path(tmp))
        print(json.dumps({"encoder_ms_p50_p99": times, "mix_english": len(mix)}))
        return
    ds = load_labelled(default_task_files(shared_data_dir()), overrides=default_overrides())
    train = [r for r in ds.rows if r.collection not in held]
    test = [r for r in ds.rows if r.collection in held]
    texts = [r.prompt for r in test]
    y = np.array([r.task for r in test])
    en = english_mask(texts)
    shared = np.isin([r.collection for r in test], SHARED_REAL)
    tr_en = [r for r, e in zip(train, english_mask([r.prompt for r in train])) if e]
    mix = english_only(length_mix(pool_prompts(), 300))

    gated = with_cache(GatedEmbedder(enc, make_embedder(args.other)), args.cache)
    clf = fit_task_classifier(LabelledSet(train, files=ds.files), gated, threshold=0.0, weight_power=0.75,
                              head_params={"C": 1.0})
    full = np.array([p.task for p in clf.predict(texts)])
    report = {"encoder": enc.name, "held_out": held, "test_rows": len(test), "test_english": int(en.sum()),
              "mix_english": len(mix), "full": {"pooled": round(float((full == y).mean()), 4),
                                                 "english": round(float((full == y)[en].mean()), 4),
                                                 "shared_real": round(float((full == y)[shared].mean()), 4)},
              "layers": {}}
    print(json.dumps(report["full"]), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        import onnxruntime as ort

        names = layer_model(args.encoder / ONNX_FILE, layers, tmp / "layers.onnx")
        sess = ort.InferenceSession(str(tmp / "layers.onnx"), providers=["CPUExecutionProvider"])
        h_tr = pooled_layers(enc, sess, names, [r.prompt for r in tr_en])
        h_te = pooled_layers(enc, sess, names, [t for t, e in zip(texts, en) if e])
        h_mix = pooled_layers(enc, sess, names, mix)
        y_tr = [r.task for r in tr_en]
        w = class_balanced_weights(y_tr, [r.collection for r in tr_en], 0.75)
        idx = np.flatnonzero(en)
        report["encoder_ms_all_layers"] = time_layers(enc, args.encoder / ONNX_FILE, None, mix, tmp)
        for k in layers:
            head = LogisticRegression(C=1.0, max_iter=2000).fit(h_tr[k], y_tr, sample_weight=w)
            p_te, p_mix = head.predict_proba(h_te[k]), head.predict_proba(h_mix[k])
            label = head.classes_[p_te.argmax(1)]
            row = {"alone_english": round(float((label == y[idx]).mean()), 4),
                   "encoder_ms_first_layers": time_layers(enc, args.encoder / ONNX_FILE, k, mix, tmp), "tau": {}}
            for tau in TAUS:
                out = p_te.max(1) >= tau
                mixed = full.copy()
                mixed[idx[out]] = label[out]
                ok = mixed == y
                row["tau"][str(tau)] = {"exit_share_held_out_english": round(float(out.mean()), 3),
                                        "exit_share_mix_english": round(float((p_mix.max(1) >= tau).mean()), 3),
                                        "pooled": round(float(ok.mean()), 4), "english": round(float(ok[en].mean()), 4),
                                        "shared_real": round(float(ok[shared].mean()), 4)}
            report["layers"][str(k)] = row
            print(k, json.dumps(row), flush=True)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

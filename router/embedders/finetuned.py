"""A fine-tuned task encoder as files (see :mod:`router.training.fit.encoder` for the recipe).

The folder holds ``encoder.json`` (labels, input bounds, recipe), ``tokenizer.json``,
``head.npz`` (the linear task head, weight (k, d) and bias (k,)) and ``model.int8.onnx`` (the
transformer with mean pooling, int8 per-channel but for :data:`FP32_FFN_LAYERS` matrices). Running it needs only ``onnxruntime``,
``tokenizers`` and numpy: no torch.

Cost is bounded whatever the prompt's length: the text is clipped to its head and tail
characters (:func:`router.embedders.clip_text`) and its word pieces to the first and last
``max_tokens // 2`` (:func:`cut_ids`).

``name`` carries a fingerprint of the files (``finetuned:<12 hex>``), so caches and saved
routers never mix two encoders.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArtifactError
from .base import clip_text, files_fingerprint, length_batches, read_folder_config
from ..predictors.linear import softmax
from .device import onnx_providers, onnx_session_options

__all__ = ["FinetunedEmbedder", "PACKAGED_ENCODER", "packaged_encoder_dir", "ENCODER_CONFIG", "ONNX_FILE", "cut_ids", "head_tail_ids", "head_tail_text",
           "export_onnx_int8", "fingerprint", "fp32_nodes", "FP32_FFN_LAYERS"]

ENCODER_CONFIG = "encoder.json"
ONNX_FILE = "model.int8.onnx"
_FILES = (ENCODER_CONFIG, "tokenizer.json", "head.npz", ONNX_FILE)
#: The fine-tuned encoder shipped inside the package (``router/embedders/task_minilm/``).
PACKAGED_ENCODER = "task-minilm"
#: The export keeps the feed-forward output projection of this many first layers in fp32. Int8
#: everywhere agreed with the fp32 torch model on 97.5% of the reference prompts embedded one at
#: a time (as served); these three matrices (their inputs, after GELU, have the activation
#: outliers that int8 rounds worst) bring it to 98.6% for ~0.5 ms (BENCHMARKS.md).
FP32_FFN_LAYERS = 3


def fp32_nodes(node_names: Sequence[str], layers: int = FP32_FFN_LAYERS) -> list[str]:
    """The MatMul nodes of an exported BERT-style graph left in fp32: the feed-forward output
    projection (``layer.<i>/output/dense``, not ``attention/output/dense``) of layers < ``layers``."""
    import re

    pattern = re.compile(r"/layer\.(\d+)/output/dense/MatMul$")
    return [n for n in node_names if (m := pattern.search(n)) and int(m.group(1)) < layers]


def packaged_encoder_dir() -> Path:
    """The folder of the encoder shipped with the package (see BENCHMARKS.md for its numbers)."""
    return Path(__file__).with_name("task_minilm")


def head_tail_text(text: str, max_chars: int = 1200) -> str:
    """The text clipped to its head and tail (``max_chars`` is recorded for the recipe; the
    clipping itself is the project's :func:`clip_text`, the same for every embedder)."""
    del max_chars
    return clip_text(text)


def cut_ids(ids: Sequence[int], cls_id: int, sep_id: int, max_tokens: int) -> list[int]:
    """``[CLS] + ids + [SEP]``, keeping the first and last ``(max_tokens - 2) / 2`` ids when too long."""
    if max_tokens < 4:
        raise ValueError("max_tokens must be at least 4")
    budget = max_tokens - 2
    ids = list(ids)
    if len(ids) > budget:
        head = budget - budget // 2
        ids = ids[:head] + ids[len(ids) - (budget - head):]
    return [cls_id, *ids, sep_id]


def head_tail_ids(tokenizer: Any, text: str, max_tokens: int) -> list[int]:
    """A transformers tokenizer's word pieces of ``text``, bounded by :func:`cut_ids`."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return cut_ids(ids, tokenizer.cls_token_id, tokenizer.sep_token_id, max_tokens)


def fingerprint(folder: str | Path) -> str:
    """sha256 over the encoder's files (name and bytes), first 12 hex digits."""
    return files_fingerprint(folder, _FILES, "fine-tuned encoder")


def export_onnx_int8(model_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Export a saved fine-tuned transformer folder (``save_finetuned``'s output) to
    ``model.int8.onnx`` (mean pooling inside; int8 dynamic, per-channel, :func:`fp32_nodes` left in fp32) and ``tokenizer.json``
    in ``out_dir`` (default: the same folder). Needs torch, transformers, onnx, onnxruntime."""
    import shutil
    import tempfile

    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer

    model_dir = Path(model_dir)
    out_dir = Path(out_dir) if out_dir is not None else model_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    model = AutoModel.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(str(model_dir))

    class _Pooled(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(out.dtype)
            return (out * m).sum(1) / m.sum(1).clamp(min=1e-9)

    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        ids = torch.ones((2, 16), dtype=torch.long)
        torch.onnx.export(_Pooled(model), (ids, torch.ones_like(ids)), str(fp32), dynamo=False,
                          input_names=["input_ids", "attention_mask"], output_names=["pooled"],
                          dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"},
                                        "pooled": {0: "b"}}, opset_version=17)
        q = Path(tmp) / ONNX_FILE
        keep = fp32_nodes([n.name for n in onnx.load(str(fp32)).graph.node if n.op_type == "MatMul"])
        if not keep:
            raise ArtifactError(f"{model_dir}: no feed-forward output projections found in the exported graph")
        quantize_dynamic(str(fp32), str(q), per_channel=True, weight_type=QuantType.QInt8, nodes_to_exclude=keep)
        q.replace(out_dir / ONNX_FILE)
        tok_tmp = Path(tmp) / "tok"
        tok.save_pretrained(str(tok_tmp))
        shutil.copyfile(tok_tmp / "tokenizer.json", out_dir / "tokenizer.json")
    for name in (ENCODER_CONFIG, "head.npz"):
        if not (out_dir / name).exists():
            shutil.copyfile(model_dir / name, out_dir / name)
    return out_dir


class FinetunedEmbedder:
    """Mean-pooled vectors (n, d) of a fine-tuned encoder folder, run by ONNX Runtime.

    ``predict_proba(texts)`` -> (n, k) over ``labels`` with the encoder's own linear head.
    ``threads``: ONNX Runtime intra-op threads (None: its default)."""

    def __init__(self, folder: str | Path | None = None, *, batch_size: int = 32, threads: int | None = None,
                 expected_fingerprint: str | None = None):
        self.packaged = folder is None
        self.folder = packaged_encoder_dir() if folder is None else Path(folder)
        cfg_path = self.folder / ENCODER_CONFIG
        cfg = read_folder_config(self.folder, ENCODER_CONFIG, "fine-tuned encoder", ("labels", "max_tokens"))
        self.config: dict[str, Any] = cfg  # encoder.json as read (recipe, notes)
        self.labels: list[str] = list(cfg["labels"])
        self.max_tokens = int(cfg["max_tokens"])
        self.temperature = float(cfg.get("temperature", 1.0))
        if not self.temperature > 0:
            raise ArtifactError(f"{cfg_path}: temperature must be positive, got {self.temperature}")
        self.batch_size = batch_size
        self.threads = threads
        self.fingerprint = fingerprint(self.folder)
        if expected_fingerprint is not None and expected_fingerprint != self.fingerprint:
            raise ArtifactError(f"fine-tuned encoder {self.folder} has fingerprint {self.fingerprint}, "
                                f"but the saved router expects {expected_fingerprint}: not the encoder it was trained with")
        self._lock = threading.Lock()
        self._session = None
        self._tok = None
        head = np.load(self.folder / "head.npz")
        self._w, self._b = head["weight"].astype(np.float32), head["bias"].astype(np.float32)
        if self._w.shape[0] != len(self.labels) or self._b.shape != (len(self.labels),):
            raise ArtifactError(f"{self.folder}/head.npz: shape {self._w.shape} does not match "
                                f"{len(self.labels)} labels")

    @property
    def name(self) -> str:
        return f"finetuned:{self.fingerprint}"

    def to_config(self) -> dict[str, Any]:
        """``path`` is None for the packaged encoder (found again wherever the package is installed)."""
        return {"type": "finetuned", "path": None if self.packaged else str(self.folder),
                "fingerprint": self.fingerprint}

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "FinetunedEmbedder":
        return cls(cfg.get("path"), expected_fingerprint=cfg.get("fingerprint"))

    def _load(self):
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                opts = onnx_session_options(self.threads)
                self._tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
                self._tok.no_truncation()
                self._tok.no_padding()
                self._cls = self._tok.token_to_id("[CLS]")
                self._sep = self._tok.token_to_id("[SEP]")
                self._session = ort.InferenceSession(str(self.folder / ONNX_FILE), opts,
                                                     providers=onnx_providers())
        return self._session

    def _ids(self, texts: Sequence[str]) -> list[list[int]]:
        encs = self._tok.encode_batch([clip_text(t) for t in texts], add_special_tokens=False)
        return [cut_ids(e.ids, self._cls, self._sep, self.max_tokens) for e in encs]

    def batches(self, texts: Sequence[str]) -> Iterator[tuple[list[int], dict[str, np.ndarray]]]:
        """The model's inputs for ``texts``, a batch at a time (:func:`length_batches`): the
        indices of the batch's texts and ``{"input_ids", "attention_mask"}``, arrays (b, s)."""
        self._load()
        ids = self._ids(list(texts))
        for part in length_batches([len(i) for i in ids], self.batch_size):
            n = max(len(ids[i]) for i in part)
            a = np.zeros((len(part), n), dtype=np.int64)
            m = np.zeros((len(part), n), dtype=np.int64)
            for r, i in enumerate(part):
                a[r, :len(ids[i])] = ids[i]
                m[r, :len(ids[i])] = 1
            yield part, {"input_ids": a, "attention_mask": m}

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """texts -> float32 array (n, d), mean-pooled (not normalised)."""
        sess = self._load()
        out = np.zeros((len(texts), self._w.shape[1]), dtype=np.float32)
        for part, feeds in self.batches(texts):
            out[part] = sess.run(None, feeds)[0]
        return out

    def head_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The encoder's own linear head: weight (k, d) and bias (k,), rows in ``labels`` order (copies)."""
        return self._w.copy(), self._b.copy()

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """texts -> array (n, k): softmax of the encoder's own head over ``temperature``
        (calibration), columns in ``labels`` order."""
        return softmax((self.encode(texts) @ self._w.T + self._b) / self.temperature)

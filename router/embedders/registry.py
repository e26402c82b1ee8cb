"""``make_embedder``: an embedder from a short name or the config dict ``to_config`` wrote."""

from __future__ import annotations

from typing import Any

from ..errors import ArtifactError
from ..text.language import GATE_VERSION
from .base import DEFAULT_EMBEDDER, Embedder
from .compose import ConcatEmbedder, GatedEmbedder, ViewsEmbedder
from .hashing import HashingEmbedder
from .minilm import SentenceTransformerEmbedder
from .onnx import OnnxMiniLMEmbedder
from .use import USEEmbedder
from .finetuned import FinetunedEmbedder
from .static import StaticEmbedder

__all__ = ["make_embedder", "GATED_SPEC", "GATED_OTHER_SPEC", "GATED_FAST_SPEC"]

#: ``gated``: the fine-tuned English encoder for English prompts, the multilingual default
#: pipeline for the rest (BENCHMARKS.md, "Language-gated encoder"), its MiniLM bounded to the first
#: and last 63 of 128 word pieces: the same accuracy on both held-out groups, a bounded cost for
#: non-Latin scripts (BENCHMARKS.md, "A bounded other side").
GATED_OTHER_SPEC = "minilm-onnx:128+use@views"
GATED_SPEC = f"task-minilm|{GATED_OTHER_SPEC}"
#: ``gated-fast``: the same English side, USE alone for the rest: the whole decision's p99 ~20 ms
#: instead of ~45, for 1.1-1.6 points of non-English accuracy (BENCHMARKS.md, "A bounded other side").
GATED_FAST_SPEC = "task-minilm|use@views"
_SHORT_SPECS = {"gated": GATED_SPEC, "gated-fast": GATED_FAST_SPEC}


def make_embedder(spec: str | dict[str, Any]) -> Embedder:
    """Build an embedder from a config dict (as ``to_config`` writes) or a short string:
    ``minilm`` (default), ``minilm-onnx`` (int8 ONNX Runtime; ``minilm-onnx:N``: at most N word
    pieces, the first and last halves), ``use`` (multilingual),
    ``hashing``, ``task-minilm`` (the fine-tuned task encoder shipped with the package;
    ``task-minilm:DIR``: one built by ``router train --finetune-encoder DIR``),
    ``gated`` / ``gated-fast`` (``task-minilm`` for English prompts, the multilingual pipeline or
    USE alone for the rest; ``A|B`` in general),
    ``static:DIR`` (a static token-embedding folder built by ``python -m
    router.training.fit.static``), ``minilm+use``, or a
    sentence-transformers name or path; a ``@views`` suffix adds the first and last sentence
    embedded next to the whole text (:class:`router.embedders.ViewsEmbedder`)."""
    if isinstance(spec, dict):
        kind = spec.get("type")
        if kind == "sentence-transformers":
            return SentenceTransformerEmbedder(spec.get("model", DEFAULT_EMBEDDER))
        if kind == "use":
            return USEEmbedder()
        if kind == "onnx":
            max_length, head_tail = spec.get("max_length", 256), spec.get("head_tail", False)
            if not (isinstance(max_length, int) and not isinstance(max_length, bool) and max_length >= 4) \
                    or not isinstance(head_tail, bool):
                raise ArtifactError(f"onnx embedder: 'max_length' must be an integer >= 4 and 'head_tail' "
                                    f"true or false, got {max_length!r} / {head_tail!r}")
            return OnnxMiniLMEmbedder(spec.get("model", DEFAULT_EMBEDDER), quantize=bool(spec.get("quantize", True)),
                                      max_length=max_length, head_tail=head_tail)
        if kind == "hashing":
            return HashingEmbedder(int(spec.get("n_features", 1024)))
        if kind == "finetuned":
            return FinetunedEmbedder.from_config(spec)
        if kind == "static":
            return StaticEmbedder.from_config(spec)
        if kind == "gated":
            if spec.get("gate") != GATE_VERSION:
                raise ArtifactError(f"gated embedder: gate {spec.get('gate')!r} is not this version's "
                                    f"{GATE_VERSION!r}")
            if not isinstance(spec.get("english"), dict) or not isinstance(spec.get("other"), dict):
                raise ArtifactError("gated embedder config needs 'english' and 'other' embedder configs")
            dims = spec.get("dims")
            if dims is not None and not (isinstance(dims, list) and len(dims) == 2
                                         and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims)):
                raise ArtifactError(f"gated embedder: 'dims' must be two positive integers, got {dims!r}")
            return GatedEmbedder(make_embedder(spec["english"]), make_embedder(spec["other"]),
                                 tuple(dims) if dims else None)
        if kind == "concat":
            return ConcatEmbedder([make_embedder(p) for p in spec.get("parts", [])])
        if kind == "views":
            if "inner" not in spec:
                raise ArtifactError("views embedder config lacks 'inner'")
            try:
                return ViewsEmbedder(make_embedder(spec["inner"]), spec.get("views", ()))
            except ValueError as e:
                raise ArtifactError(str(e)) from None
        raise ArtifactError(f"unknown embedder type {kind!r}")
    spec = _SHORT_SPECS.get(spec, spec)
    if "|" in spec:
        english, _, other = spec.partition("|")
        return GatedEmbedder(make_embedder(english), make_embedder(other))
    if spec.endswith("@views"):
        return ViewsEmbedder(make_embedder(spec[: -len("@views")]))
    if "+" in spec:
        return ConcatEmbedder([make_embedder(s) for s in spec.split("+")])
    if spec in ("minilm", "default"):
        return SentenceTransformerEmbedder(DEFAULT_EMBEDDER)
    if spec in ("use", "use-multilingual", "use-multilingual-v3"):
        return USEEmbedder()
    if spec in ("onnx", "minilm-onnx"):
        return OnnxMiniLMEmbedder(DEFAULT_EMBEDDER)
    if spec.startswith("minilm-onnx:"):
        n = spec[len("minilm-onnx:"):]
        if not n.isdigit() or int(n) < 4:
            raise ValueError(f"embedder {spec!r}: minilm-onnx:N takes a number of word pieces N >= 4")
        return OnnxMiniLMEmbedder(DEFAULT_EMBEDDER, max_length=int(n), head_tail=True)
    if spec == "hashing":
        return HashingEmbedder()
    if spec in ("task-minilm", "finetuned-minilm"):
        return FinetunedEmbedder()
    if spec.startswith("task-minilm:"):
        return FinetunedEmbedder(spec[len("task-minilm:"):])
    if spec.startswith("static:"):
        return StaticEmbedder(spec[len("static:"):])
    return SentenceTransformerEmbedder(spec)

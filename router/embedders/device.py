"""Where embedding runs: a GPU when one is present (``$ROUTER_DEVICE=auto``, the default), else
the CPU. Retraining on a large log and bulk evaluation embed far faster on a GPU; serving on a
CPU-only machine is unchanged. Nothing here imports torch or onnxruntime at import time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .. import config

__all__ = ["onnx_providers", "onnx_session_options", "torch_device"]


def onnx_providers(available: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> list[str]:
    """ONNX Runtime execution providers to ask for, CUDA first when the installed runtime offers
    it (``onnxruntime-gpu``) and ``$ROUTER_DEVICE`` allows; the CPU provider always last, so ops
    without a CUDA kernel (some int8 ones) run there. ``available``: the runtime's providers
    (default: ``onnxruntime.get_available_providers()``)."""
    device = config.compute_device(environ)
    if available is None:
        import onnxruntime as ort

        available = ort.get_available_providers()
    if device != "cpu" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise RuntimeError("$ROUTER_DEVICE=cuda but this onnxruntime has no CUDA provider "
                           f"(it offers {list(available)}; install onnxruntime-gpu)")
    return ["CPUExecutionProvider"]


def onnx_session_options(threads: int | None = None):
    """ONNX Runtime session options for a serving embedder: ``threads`` intra-op threads (None:
    one per physical core), one inter-op thread, full graph optimisation, and worker threads that
    sleep when idle instead of spinning. Spinning kept both cores busy between the few-ms calls of
    a routing decision: the gateway spent 31 ms of CPU on an `auto` request that took 10 ms, and
    concurrent requests starved each other (BENCHMARKS.md, "A bounded other side")."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.log_severity_level = 3
    return opts


def torch_device(cuda_available: bool | None = None, environ: Mapping[str, str] | None = None) -> str:
    """``cuda`` or ``cpu`` for the torch embedders, by ``$ROUTER_DEVICE`` (``auto``: cuda when
    ``torch.cuda.is_available()``). ``cuda_available``: injectable for tests."""
    device = config.compute_device(environ)
    if device == "cpu":
        return "cpu"
    if cuda_available is None:
        import torch

        cuda_available = bool(torch.cuda.is_available())
    if cuda_available:
        return "cuda"
    if device == "cuda":
        raise RuntimeError("$ROUTER_DEVICE=cuda but torch sees no CUDA device")
    return "cpu"

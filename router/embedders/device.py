"""Where embedding runs: a GPU when one is present (``$ROUTER_DEVICE=auto``, the default), else
the CPU. Retraining on a large log and bulk evaluation embed far faster on a GPU; serving on a
CPU-only machine is unchanged. Nothing here imports torch or onnxruntime at import time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .. import config

__all__ = ["onnx_providers", "torch_device"]


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

"""Where the embedders run: a GPU when present ($ROUTER_DEVICE=auto), else the CPU."""

import pytest

from router.config import compute_device
from router.embedders.device import onnx_providers, torch_device

GPU_RUNTIME = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_auto_uses_cuda_when_the_runtime_offers_it_with_the_cpu_behind():
    assert onnx_providers(GPU_RUNTIME, environ={}) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers(["CPUExecutionProvider"], environ={}) == ["CPUExecutionProvider"]
    assert torch_device(True, environ={}) == "cuda"
    assert torch_device(False, environ={}) == "cpu"


def test_cpu_forces_the_cpu_and_cuda_without_a_gpu_is_an_error():
    env = {"ROUTER_DEVICE": "cpu"}
    assert onnx_providers(GPU_RUNTIME, environ=env) == ["CPUExecutionProvider"]
    assert torch_device(True, environ=env) == "cpu"
    with pytest.raises(RuntimeError, match="no CUDA provider"):
        onnx_providers(["CPUExecutionProvider"], environ={"ROUTER_DEVICE": "cuda"})
    with pytest.raises(RuntimeError, match="no CUDA device"):
        torch_device(False, environ={"ROUTER_DEVICE": "cuda"})


def test_a_bad_device_setting_names_the_variable():
    with pytest.raises(ValueError, match=r"\$ROUTER_DEVICE must be auto, cpu or cuda"):
        compute_device({"ROUTER_DEVICE": "tpu"})
    assert compute_device({}) == "auto"


def test_this_machine_without_a_gpu_runs_the_onnx_embedder_on_the_cpu():
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has a CUDA runtime")
    assert onnx_providers() == ["CPUExecutionProvider"]


def test_serving_sessions_sleep_instead_of_spinning():
    pytest.importorskip("onnxruntime")
    from router.embedders.device import onnx_session_options

    opts = onnx_session_options(3)
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.intra_op_num_threads == 3 and opts.inter_op_num_threads == 1
    assert onnx_session_options().intra_op_num_threads == 0  # the runtime's default: one per core

"""The accuracy of a subnet as users deploy it in int8: measured on the quantised model, not assumed.

For an arch: the static subnet with BN recalibrated (as every evaluation does), exported to ONNX, then
quantised post-training and statically on the run's own calibration batches (the training inputs BN is
recalibrated on), by ONNX Runtime (``quantize_static``, QDQ, per-channel) or OpenVINO (NNCF's
``nncf.quantize``); the quantised model is scored on the validation split by its runtime.
:class:`Int8Evaluator` wraps an evaluator so a search on an int8 target (``onnxruntime-cpu-int8``,
``openvino-cpu-int8``) ranks archs by their int8 score; ``fp32_<score>`` keeps the fp32 one beside it.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from ..core.arch import Arch
from ..core.errors import SupernetError
from .subnet import calibrated_subnet

BACKENDS = {"onnxruntime-cpu-int8": "onnxruntime", "openvino-cpu-int8": "openvino"}


def quantized_runner(net: torch.nn.Module, shape: tuple[int, ...], calib: list[np.ndarray], backend: str, folder: Path):
    """``run(x: np.ndarray) -> np.ndarray``: ``net`` exported to ONNX under ``folder``, quantised to int8 with
    activations calibrated on ``calib`` (prepared inputs, numpy), run by ``backend`` on one CPU thread."""
    from ..io.export import export_onnx
    onnx = Path(folder) / "model.onnx"
    dtype = torch.from_numpy(np.asarray(calib[0])).dtype if calib else torch.float32  # int64 for token ids
    export_onnx(net.eval().float().cpu(), shape, onnx, dtype)
    if backend == "onnxruntime":
        import onnxruntime as ort

        from ..hardware.runtimes.ort_int8 import quantize
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(quantize(onnx, onnx.with_suffix(".int8.onnx"), calib)), opts,
                                       providers=["CPUExecutionProvider"])
        return lambda x: session.run(None, {"input": x})[0]
    if backend == "openvino":
        from ..hardware.runtimes.openvino import compile_cpu, read
        compiled = compile_cpu(read(None, None, onnx, int8=True, batches=calib), 1)
        return lambda x: compiled({0: x})[0]
    raise SupernetError(f"unknown int8 backend {backend!r}; backends are {sorted(set(BACKENDS.values()))}")


def int8_score(supernet, arch: Arch, calib: list[torch.Tensor], batches, task, backend: str) -> float:
    """The task's score over ``batches`` of ``(x, y)`` of ``arch``'s int8 model (see the module docstring)."""
    net = calibrated_subnet(supernet, arch, calib)
    prepared = [supernet.prepare_input(x, arch).float().numpy() for x in calib]
    total, count = 0.0, 0
    with tempfile.TemporaryDirectory() as tmp:
        run = quantized_runner(net, (1, *prepared[0].shape[1:]), prepared, backend, Path(tmp))
        for x, y in batches:
            logits = torch.from_numpy(np.asarray(run(supernet.prepare_input(x, arch).float().numpy())))
            t, n = task.score_terms(logits, y)
            total, count = total + t, count + n
    return task.score(total, count)


class Int8Evaluator:
    """An evaluator whose score is the int8 model's (``backend``: onnxruntime | openvino), with the fp32 score
    of ``inner`` kept as ``fp32_<score>``; other attributes come from ``inner`` (a CheckpointEvaluator)."""

    def __init__(self, inner, backend: str):
        self.inner, self.backend = inner, backend

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, arch: Arch) -> dict:
        result = dict(self.inner(arch))
        data, calib = self.inner.loaded_data()
        name = self.inner.task.score_name
        batches = data.eval_batches("val", 500)
        result[f"fp32_{name}"] = result[name]
        result[name] = int8_score(self.inner.model, arch, calib, batches, self.inner.task, self.backend)
        return result

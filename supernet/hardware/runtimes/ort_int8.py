"""ONNX Runtime int8: post-training static quantisation of the ONNX export
(``onnxruntime.quantization.quantize_static``, QDQ format, per-channel weights, activations
calibrated by MinMax over a :class:`Batches` reader), timed in ONNX Runtime's CPU provider."""
from __future__ import annotations

import logging
from pathlib import Path

EXTRA = "onnxruntime"


def batches_reader(batches, input_name: str = "input"):
    """A ``CalibrationDataReader`` over ``batches`` (numpy float32 arrays): one feed per batch, then None."""
    from onnxruntime.quantization import CalibrationDataReader

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.items = iter(batches)

        def get_next(self):
            batch = next(self.items, None)
            return None if batch is None else {input_name: batch}

    return Batches()


def quantize(fp32: Path, int8: Path, batches) -> Path:
    """``int8``: the QDQ int8 model of the ONNX file ``fp32``, activations calibrated on ``batches``.
    Written through a temp file beside it (nothing half-written)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from ...io.files import atomic_file
    root = logging.getLogger()  # quantize_static logs its pre-processing advice on the root logger for every model
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with atomic_file(int8) as tmp:
            quantize_static(str(fp32), str(tmp), batches_reader(batches), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    return Path(int8)


def time_ort_int8(module, x, cfg, onnx_path: Path) -> list[float]:
    """Per-call seconds of the int8 model (quantised once per file, beside ``onnx_path``) of ``module`` with
    typical activation ranges (:func:`supernet.hardware.runtimes.typical_activations`)."""
    from ...io.export import export_onnx
    from ..clock import time_onnx
    from . import calibration_batches, typical_activations
    onnx_path = Path(onnx_path)
    int8 = onnx_path.with_suffix(".int8.onnx")
    if not int8.exists():
        if not onnx_path.exists():
            export_onnx(typical_activations(module, x), tuple(x.shape), onnx_path, x.dtype)
        quantize(onnx_path, int8, calibration_batches(x))
    return time_onnx(module, x, cfg, int8)

"""OpenVINO on CPU: the ONNX export read by OpenVINO, compiled for the CPU plugin, timed with an
infer request; int8 by NNCF's post-training quantisation (``nncf.quantize``) of that model.

Threads: ``INFERENCE_NUM_THREADS = cfg.threads``, one stream, the LATENCY hint (one request at a time,
as an application serving one input does). The IR (``model.xml`` + ``model.bin``) is what
``supernet export --format openvino`` writes (:func:`save_ir`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

EXTRA = "openvino"


def read(module, x, onnx_path: Path, int8: bool = False, batches=None):
    """The OpenVINO model of ``module`` (exported to ``onnx_path`` first when missing); with ``int8``, NNCF's
    post-training quantisation calibrated on ``batches`` (numpy arrays; default: seeded random ones)."""
    import openvino as ov

    from ...io.export import export_onnx
    from . import calibration_batches
    onnx_path = Path(onnx_path)
    if not onnx_path.exists():
        export_onnx(module, tuple(x.shape), onnx_path, x.dtype)
    model = ov.Core().read_model(str(onnx_path))
    if int8:
        import nncf
        data = batches if batches is not None else calibration_batches(x)
        model = nncf.quantize(model, nncf.Dataset(data), subset_size=len(data))
    return model


def compile_cpu(model, threads: int):
    import openvino as ov
    return ov.Core().compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
                                                  "PERFORMANCE_HINT": "LATENCY"})


def time_openvino(module, x, cfg, onnx_path: Path, int8: bool = False) -> list[float]:
    """Per-call seconds of one synchronous ``infer`` of the model compiled for ``x``'s static shape, its input
    tensor set once: what OpenVINO's own ``benchmark_app -hint none -nthreads T -nstreams 1 -api sync -shape``
    reports (through Python's ``infer(feed)`` on the dynamic-batch model a 0.08 ms net took 0.18 ms). int8:
    ``module`` with typical activation ranges (:func:`supernet.hardware.runtimes.typical_activations`)."""
    from ..clock import timed
    ir = Path(onnx_path).with_suffix(".int8.xml" if int8 else ".xml")
    if ir.exists():
        import openvino as ov
        model = ov.Core().read_model(str(ir))
    else:
        if int8:
            from . import typical_activations
            module = typical_activations(module, x)
        model = read(module, x, onnx_path, int8)
        if int8:  # quantised once per file: later rounds reuse it
            save(model, ir)
    import openvino as ov
    model.reshape(list(x.shape))  # the deployed input shape, as benchmark_app -shape: a dynamic batch axis costs
    request = compile_cpu(model, cfg.threads).create_infer_request()  # ~0.07 ms a call on a sub-ms net here
    request.set_input_tensor(ov.Tensor(np.ascontiguousarray(x.numpy())))  # set once, as an application does
    for _ in range(cfg.warmup):
        request.infer()
    return timed(request.infer, cfg)


def save(model, xml: Path) -> None:
    import openvino as ov
    ov.save_model(model, str(xml), compress_to_fp16=False)


def save_ir(onnx_path: Path, xml: Path, int8_batches=None, module=None, x=None) -> None:
    """``xml`` + ``.bin``: the OpenVINO IR of an ONNX file (fp32 weights), or with ``int8_batches`` its
    NNCF int8 model calibrated on them."""
    model = read(module, x, onnx_path, int8=int8_batches is not None, batches=int8_batches)
    save(model, xml)

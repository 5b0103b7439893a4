"""Deployment runtimes as latency targets (OpenVINO, ExecuTorch + XNNPACK, ONNX Runtime int8) and export
in their own formats; each target is refused in one line naming its extra when its package is missing."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from supernet.core.errors import SupernetError
from supernet.core.registry import get_space, space_config
from supernet.hardware.rounds import MeasureConfig, fingerprint, measure
from tests.support import assert_refused, run_main

RUNTIMES = {"openvino-cpu": ("openvino", "openvino"), "openvino-cpu-int8": ("nncf", "openvino"),
            "executorch-xnnpack": ("executorch", "executorch"), "onnxruntime-cpu-int8": ("onnxruntime", None)}
SLOW = {"executorch-xnnpack"}  # lowering a program takes tens of seconds on 2 shared cores


@pytest.fixture
def space():
    return get_space("mobilenet").build_space(space_config("mobilenet", "tiny"))


@pytest.mark.parametrize("target", sorted(RUNTIMES))
def test_a_runtime_target_is_refused_in_one_line_naming_its_extra(target, monkeypatch):
    package, extra = RUNTIMES[target]
    monkeypatch.setitem(sys.modules, package, None)  # `import package` now raises ImportError
    with pytest.raises(SupernetError) as info:
        MeasureConfig(target=target).check()
    message = str(info.value)
    fix = f"pip install 'supernet[{extra}]'" if extra else f"pip install {package}"  # onnxruntime: a core dependency
    assert fix in message and target in message and "\n" not in message


def test_export_refuses_a_missing_runtime_before_writing(trained, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "openvino", None)
    status, err = run_main(["export", trained, "--arch", "smallest", "--out", tmp_path / "e", "--format", "openvino"],
                           capsys)
    assert_refused(status, err, "--format openvino needs openvino, which is not installed here: "
                                "pip install 'supernet[openvino]'")
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("target", [pytest.param(t, marks=pytest.mark.slow) if t in SLOW else t
                                    for t in sorted(RUNTIMES)])
def test_each_installed_runtime_times_a_tiny_subnet(space, target, tmp_path):
    pytest.importorskip(RUNTIMES[target][0], reason=f"{RUNTIMES[target][0]} is not installed")
    cfg = MeasureConfig(target=target, threads=1, warmup=1, repeats=3, min_seconds=0.0)
    small, large = space.smallest(), space.largest()
    times = [measure(space.build_static(a), space.input_shape(a), cfg, tmp_path / f"{i}.onnx")
             for i, a in enumerate((small, large))]
    assert all(0 < t["median_ms"] <= t["p90_ms"] and t["repeats"] == 3 for t in times)
    written = {p.name for p in tmp_path.iterdir()}
    expected = {"executorch-xnnpack": "0.pte", "openvino-cpu-int8": "0.int8.xml",
                "onnxruntime-cpu-int8": "0.int8.onnx"}.get(target, "0.onnx")
    assert expected in written, written  # timed on the runtime's own file
    assert fingerprint(cfg).get(RUNTIMES[target][0] if target != "onnxruntime-cpu-int8" else "onnxruntime")


@pytest.mark.slow
def test_executorch_times_a_delegated_program_on_a_resized_thread_pool(tmp_path):
    """A 2-D net on XNNPACK's thread pool, timed on 1 thread with torch on 1 thread (as `--threads 1` sets it):
    resizing the pool under a loaded method aborted the process (a pthread_mutex_lock assertion; bench_latency
    on the mnist variant died at its first unit), so the timing runs in a child process that must exit cleanly."""
    pytest.importorskip("executorch", reason="the executorch extra is not installed")
    import subprocess
    code = f"""
import pathlib, torch
torch.set_num_threads(1)
from supernet.core.registry import get_space, space_config
from supernet.hardware.rounds import MeasureConfig, measure
space = get_space("mobilenet").build_space(space_config("mobilenet", "mnist"))
cfg = MeasureConfig(target="executorch-xnnpack", threads=1, warmup=1, repeats=3, min_seconds=0.0)
a = space.smallest()
print(measure(space.build_static(a), space.input_shape(a), cfg, pathlib.Path({str(tmp_path)!r}) / "a.onnx")["median_ms"])
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-1500:]
    assert float(done.stdout.strip().splitlines()[-1]) > 0


@pytest.mark.parametrize("target", ["onnxruntime-cpu-int8", "openvino-cpu-int8"])
def test_an_int8_target_times_a_model_of_token_ids(target, tmp_path):
    """A text encoder's input is int64 token ids: its int8 model keeps that input (it was exported and
    calibrated on floats, and ONNX Runtime refused the ids: 'Unexpected input data type')."""
    pytest.importorskip(RUNTIMES[target][0], reason=f"{RUNTIMES[target][0]} is not installed")
    from search_spaces.hf_encoder.config import with_model
    from supernet.core.registry import build_supernet
    from supernet.hardware.rounds import measure_subnet
    from tests.support.hf_encoder import save_kind
    cfg = with_model(space_config("hf_encoder", "default"), str(save_kind(tmp_path / "bert", "bert")), seq_len=12)
    space = build_supernet("hf_encoder", cfg).space
    timed = measure_subnet(space, space.smallest(), MeasureConfig(target=target, threads=1, warmup=1, repeats=3,
                                                                   min_seconds=0.0, rounds=1))
    assert 0 < timed["median_ms"] <= timed["p90_ms"]


@pytest.mark.parametrize("fmt", ["openvino", pytest.param("executorch", marks=pytest.mark.slow)])
def test_export_writes_the_runtime_format_and_it_computes_the_same_logits(trained, tmp_path, fmt, capsys):
    from supernet.io.export import load_exported
    pytest.importorskip(fmt, reason=f"the {fmt} extra is not installed")
    out = tmp_path / "e"
    status, _ = run_main(["export", trained, "--arch", "median", "--out", out, "--format", fmt], capsys)
    assert status in (0, None)
    net = load_exported(out)
    import json
    shape = json.loads((out / "arch.json").read_text())["input_shape"]
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = net(x).numpy()
    if fmt == "openvino":
        import openvino as ov
        assert (out / "model.xml").exists() and (out / "model.bin").exists() and (out / "model.onnx").exists()
        f32 = {"INFERENCE_PRECISION_HINT": "f32"}  # the IR itself; the CPU plugin may run bf16 by default
        got = ov.Core().compile_model(str(out / "model.xml"), "CPU", f32)({0: x.numpy()})[0]
    else:
        from supernet.hardware.runtimes.executorch import load
        got = load(out / "model.pte").execute([x])[0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp file left behind


def activation_scales(int8_onnx: Path) -> np.ndarray:
    """The scales of every per-tensor QuantizeLinear of an int8 QDQ model (its activations)."""
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(int8_onnx).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    return np.array([float(inits[n.input[1]]) for n in graph.node
                     if n.op_type == "QuantizeLinear" and n.input[1] in inits and inits[n.input[1]].size == 1])


def test_int8_timing_quantises_a_fresh_subnet_with_the_ranges_of_a_trained_one(tmp_path):
    """A freshly built MobileNet keeps BatchNorm's initial statistics, its activations shrink layer by layer
    (int8 scales of 1e-9), and ONNX Runtime ran such models 2-3x slower than trained ones. The int8 timers
    recalibrate BatchNorm first, so every activation scale is that of a normalised network."""
    from supernet.hardware.runtimes import typical_activations
    from supernet.hardware.runtimes.ort_int8 import quantize, time_ort_int8
    from supernet.hardware.runtimes import calibration_batches
    from supernet.io.export import export_onnx
    space = get_space("mobilenet").build_space(space_config("mobilenet", "mnist"))
    arch = space.largest()
    x = torch.randn((1,) + tuple(space.input_shape(arch)))
    cfg = MeasureConfig(target="onnxruntime-cpu-int8", threads=1, warmup=0, repeats=3, min_seconds=0.0)
    time_ort_int8(space.build_static(arch).eval(), x, cfg, tmp_path / "timed.onnx")
    export_onnx(space.build_static(arch).eval(), tuple(x.shape), tmp_path / "raw.onnx", x.dtype)
    quantize(tmp_path / "raw.onnx", tmp_path / "raw.int8.onnx", calibration_batches(x))
    timed, raw = activation_scales(tmp_path / "timed.int8.onnx"), activation_scales(tmp_path / "raw.int8.onnx")
    assert raw.min() < 1e-6 < 1e-4 < timed.min(), (raw.min(), timed.min())  # the fresh build's ranges collapse
    module = typical_activations(space.build_static(arch).eval(), x)
    norms = [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    stds = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: stds.append(float(out.std()))) for m in norms]
    with torch.no_grad():
        module(torch.randn((16,) + tuple(space.input_shape(arch)), generator=torch.Generator().manual_seed(1)))
    for hook in hooks:
        hook.remove()
    assert not module.training and len(stds) == len(norms) > 0
    assert 0.5 < min(stds) and max(stds) < 2.0, (min(stds), max(stds))  # every BatchNorm output normalised
    plain = torch.nn.Sequential(torch.nn.Linear(4, 3))
    assert typical_activations(plain, torch.zeros(1, 4)) is plain and plain.training  # nothing to recalibrate

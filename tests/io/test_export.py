import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from tests.support import archs_of, input_for

from supernet.evaluation.recalibrated import export_from_checkpoint
from supernet.io.export import export_subnet, load_exported
from supernet.layers.calibration import calibrate_bn


@pytest.mark.slow
def test_export_equals_supernet_and_onnx(tiny1d, tmp_path):
    model = tiny1d
    for i, arch in enumerate(archs_of(model.space, n_random=3)):
        batches = [input_for(model, arch, batch=16, seed=s) for s in range(2)]
        calibrate_bn(model, lambda x: model(x, arch), batches)
        out = export_subnet(model, "mobilenet", arch, tmp_path / f"e{i}")
        assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.json", "arch.json", "model.onnx"}
        x = input_for(model, arch, batch=5, seed=9)
        with torch.no_grad():
            expected = model.eval()(x, arch)
            got = load_exported(out)(x)
        assert (got - expected).abs().max() <= 1e-5
        session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
        onnx_out = session.run(None, {"input": x.numpy()})[0]
        assert np.abs(onnx_out - expected.numpy()).max() <= 1e-4
        meta = json.loads((out / "arch.json").read_text())
        assert meta["flops"] == model.flops(arch) and meta["input_shape"] == [1, 1, arch["r"]]


def test_export_from_checkpoint_recalibrates_and_needs_no_supernet_to_load(trained, tmp_path):
    out = export_from_checkpoint(trained, "smallest", tmp_path / "small", onnx=False)
    net = load_exported(out)
    assert not any("Elastic" in type(m).__name__ for m in net.modules())
    bn = net.blocks[0].expand_bn
    assert bn.num_batches_tracked.item() == 1  # recalibrated on the one cached batch
    assert not list(out.parent.glob(".small.tmp-*"))


def test_export_refuses_to_overwrite(trained, tmp_path):
    export_from_checkpoint(trained, "largest", tmp_path / "x", onnx=False)
    from supernet.core.errors import SupernetError
    with pytest.raises(SupernetError, match="already exists"):
        export_from_checkpoint(trained, "largest", tmp_path / "x", onnx=False)

"""int8 as deployed: the quantised model's accuracy is measured on the validation split, and its outputs
stay close to the fp32 subnet's on a tiny trained run."""
import numpy as np
import pytest
import torch

from supernet.evaluation.checkpoint import CheckpointEvaluator
from supernet.evaluation.int8 import Int8Evaluator, quantized_runner
from supernet.evaluation.subnet import calibrated_subnet

BACKENDS = {"onnxruntime": "onnxruntime", "openvino": "nncf"}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_int8_model_is_scored_and_its_outputs_are_close_to_fp32(trained, backend, tmp_path):
    pytest.importorskip(BACKENDS[backend], reason=f"{BACKENDS[backend]} is not installed")
    fp32 = CheckpointEvaluator(trained)
    arch = fp32.space.median()
    data, calib = fp32.loaded_data()
    net = calibrated_subnet(fp32.model, arch, calib)
    prepared = [fp32.model.prepare_input(x, arch).numpy() for x in calib]
    run = quantized_runner(net, (1, *prepared[0].shape[1:]), prepared, backend, tmp_path)
    assert (tmp_path / "model.onnx").exists()
    x, _ = next(iter(data.eval_batches("val", 64)))
    x = fp32.model.prepare_input(x, arch)
    with torch.no_grad():
        expected = net(x).numpy()
    got = np.asarray(run(x.numpy()))
    assert got.shape == expected.shape
    scale = np.abs(expected).max()
    assert np.abs(got - expected).max() <= 0.1 * scale  # int8 rounding, not another network
    assert np.mean(got.argmax(1) == expected.argmax(1)) >= 0.9
    assert np.abs(got - expected).max() > 0  # really quantised, not the fp32 graph again

    result = Int8Evaluator(fp32, backend)(arch)
    plain = fp32(arch)
    assert result["fp32_accuracy"] == pytest.approx(plain["accuracy"])
    assert 0.0 <= result["accuracy"] <= 1.0 and abs(result["accuracy"] - plain["accuracy"]) <= 0.1
    assert result["flops"] == plain["flops"]

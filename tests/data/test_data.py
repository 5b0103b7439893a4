import numpy as np
import pytest
import torch

from supernet.core.errors import SupernetError
from supernet.data.base import BatchStream, calibration_batches
from supernet.data.load import load_data
from supernet.evaluation.recalibrated import checkpoint_data


def _rows(split):
    return {tuple(r) for r in split.x.flatten(1).numpy().round(5)}


@pytest.mark.slow
@pytest.mark.parametrize("name,shape,classes", [("mnist1d", (1, 40), 10), ("digits", (1, 8, 8), 10),
                                                ("mnist", (1, 28, 28), 10)])
def test_builtin_data_has_disjoint_splits(name, shape, classes):
    data = load_data(name, samples=1000)
    assert tuple(data.train.x.shape[1:]) == shape and data.num_classes == classes
    assert len(data.train) > len(data.val) > 0 and len(data.test) > 0
    train, val, test = _rows(data.train), _rows(data.val), _rows(data.test)
    assert not (train & val) and not (train & test) and not (val & test)


def test_npz_with_given_splits_and_channel_axis(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x=rng.random((50, 12)), y=rng.integers(0, 3, 50), x_val=rng.random((7, 12)),
             y_val=rng.integers(0, 3, 7), x_test=rng.random((9, 12)), y_test=np.full(9, 3))
    data = load_data(str(path))
    assert (len(data.train), len(data.val), len(data.test)) == (50, 7, 9)
    assert data.train.x.shape == (50, 12) and data.num_classes == 4 and data.info().sample_shape == (12,)


def test_npz_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 5)))
    with pytest.raises(SupernetError, match="no array 'y'"):
        load_data(str(bad))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(SupernetError, match="is not an .npz file"):
        load_data(str(tmp_path / "junk.npz"))
    with pytest.raises(SupernetError, match="unknown data"):
        load_data("imagenet")


def test_batch_stream_is_a_pure_function_of_step(tiny1d):
    data = load_data("mnist1d", samples=500)
    a, b = BatchStream(data.train, 32, seed=1), BatchStream(data.train, 32, seed=1)
    steps = [0, 5, a.steps_per_epoch + 2, 3]
    for s in steps:
        xa, ya = a.batch(s)
        xb, yb = b.batch(s)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    epoch0 = torch.cat([a.batch(s)[1] for s in range(a.steps_per_epoch)])
    epoch1 = torch.cat([a.batch(a.steps_per_epoch + s)[1] for s in range(a.steps_per_epoch)])
    assert len(epoch0) == a.steps_per_epoch * 32 and not torch.equal(epoch0, epoch1)


def test_calibration_batches_are_fixed():
    data = load_data("mnist1d", samples=500)
    one, two = calibration_batches(data.train, 64, 3, 0), calibration_batches(data.train, 64, 3, 0)
    assert len(one) == 3 and all(torch.equal(p, q) for p, q in zip(one, two))


def test_checkpoint_data_keeps_the_val_fraction_it_was_trained_with():
    saved = {"data": "mnist1d", "samples": 500, "seed": 0}  # runs saved before val_fraction existed
    default, _ = checkpoint_data({"train": saved}, 1)
    half, _ = checkpoint_data({"train": {**saved, "val_fraction": 0.5}}, 1)
    assert (len(default.train), len(default.val)) == (360, 40)
    assert (len(half.train), len(half.val), len(half.test)) == (200, 200, 100)

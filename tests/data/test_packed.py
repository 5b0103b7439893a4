"""Packed image folders: same batches as the image folder, exact resume, batched transforms, clear errors."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tests.support import assert_one_line_error, cli
from tests.support import take, write_images

from supernet.api import pack_data
from supernet.core.errors import SupernetError
from supernet.data.batch_transforms import crop_resize_batch
from supernet.data.image_transforms import crop_resize, random_crop_box
from supernet.data.imagefolder import ImageFolderData
from supernet.data.load import load_data
from supernet.data.packed import PackedData


def jpeg_folder(root: Path, splits=("train",), per_class=6, size=(30, 24)) -> Path:
    """RGB JPEGs, 3 classes: photos-like data (flipped by default)."""
    rng = np.random.default_rng(0)
    for split in splits:
        for c in ("cat", "dog", "owl"):
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / c / f"{i}.jpg", quality=90)
    return root


def both(folder: Path, packed: Path, size=16, **kw):
    a, b = ImageFolderData(folder, num_workers=0, **kw), PackedData(packed, **kw)
    a.set_image_size(size)
    b.set_image_size(size)
    return a, b


def close(xs, ys, tol):
    return len(xs) == len(ys) and all(torch.equal(u, v) and (x - y).abs().max() <= tol for (x, u), (y, v) in zip(xs, ys))


def test_batched_crop_resize_is_the_image_folders_crop_resize():
    rng = np.random.default_rng(0)
    img = torch.randint(0, 256, (3, 37, 45), dtype=torch.uint8)
    boxes = [random_crop_box(37, 45, rng, (0.05, 1.0)) for _ in range(12)] + [(0, 0, 37, 45), (3, 4, 16, 16)]
    flips = torch.tensor([i % 3 == 0 for i in range(len(boxes))])
    got = crop_resize_batch(img.expand(len(boxes), -1, -1, -1), torch.tensor(boxes), 16, flips)
    for b, box in enumerate(boxes):
        want = crop_resize(img.float() / 255, box, 16)
        assert (got[b] - (want.flip(-1) if flips[b] else want)).abs().max() < 1e-5


def test_pack_at_native_size_gives_the_image_folders_batches(tmp_path):
    folder = jpeg_folder(tmp_path / "img")  # no val/: held out of train/ by seed on both sides
    meta = pack_data(folder, tmp_path / "packed", 64, workers=0, progress=False)
    assert meta["splits"] == {"train": 18} and meta["layout"]["val"].startswith("held out")
    a, b = both(folder, tmp_path / "packed", seed=3)
    assert b.flip and [a.split_size(s) for s in ("train", "val", "test")] == [b.split_size(s) for s in
                                                                              ("train", "val", "test")]
    assert (a.info().sample_shape, a.info().num_classes) == (b.info().sample_shape, b.info().num_classes) == ((3, 16, 16), 3)
    assert close(take(a.train_batches(0, 5, seed=7), 6), take(b.train_batches(0, 5, seed=7), 6), 1e-4)
    assert close(list(a.eval_batches("val", 4)), list(b.eval_batches("val", 4)), 1e-4)
    assert all((x - y).abs().max() < 1e-4 for x, y in zip(a.calibration_batches(2, 4, 1), b.calibration_batches(2, 4, 1)))


def test_packed_batches_resume_exactly_and_shard_the_global_batch(tmp_path):
    folder = jpeg_folder(tmp_path / "img", splits=("train", "val"))
    pack_data(folder, tmp_path / "packed", 64, workers=0, progress=False)
    data = PackedData(tmp_path / "packed")
    data.set_image_size(16)
    run = take(data.train_batches(0, 6, seed=2), 7)
    resumed = take(data.train_batches(4, 6, seed=2), 3)
    assert all(torch.equal(x, y) and torch.equal(u, v) for (x, u), (y, v) in zip(run[4:], resumed))
    halves = [take(data.train_batches(0, 6, seed=2, shard=(r, 2)), 7) for r in range(2)]
    for k in range(7):
        assert torch.equal(torch.cat([halves[0][k][0], halves[1][k][0]]), run[k][0])
    assert data.split_size("val") == 18 and data.describe()["layout"]["val"] == "val/"


def test_a_shrunk_pack_differs_by_resize_rounding_only(tmp_path):
    folder = jpeg_folder(tmp_path / "img", size=(40, 32))
    pack_data(folder, tmp_path / "packed", 24, workers=0, progress=False)
    index = np.load(tmp_path / "packed" / "train.index.npy")
    assert index[:, 2:4].min(axis=1).max() == 24 and (index[:, 4:6] == (32, 40)).all()  # stored 24 x 30 of 32 x 40
    a, b = both(folder, tmp_path / "packed", size=16)
    diff = torch.cat([(x - y).abs().flatten() for (x, _), (y, _) in zip(take(a.train_batches(0, 5, 0), 3),
                                                                        take(b.train_batches(0, 5, 0), 3))])
    assert 0 < diff.mean() < 0.15  # normalised units (std ~ 0.23 of [0, 1]): a few levels of 255 on average


@pytest.mark.slow
def test_training_on_packed_data_resumes_exactly(tmp_path):
    import shutil

    from supernet.api import resume_training, train
    from supernet.io.checkpoint import load_checkpoint
    from supernet.training.train_config import TrainConfig
    folder = jpeg_folder(tmp_path / "img", per_class=8)
    pack_data(folder, tmp_path / "packed", 64, workers=0, progress=False)
    cfg = TrainConfig(data=f"packed:{tmp_path / 'packed'}", variant="tiny2d", batch_size=4, steps=6, device="cpu",
                      checkpoint_every=3, calib_batches=1, tensorboard=False, progress=False, threads=1, warmup_steps=1)
    full, part = train(cfg, tmp_path / "full"), train(cfg, tmp_path / "part")
    shutil.rmtree(part / "checkpoints" / "step-0000006")  # a crash after step 3
    (part / "log.jsonl").write_text("".join(l for l in open(part / "log.jsonl") if json.loads(l)["step"] < 3))
    resume_training(part)
    losses = [[json.loads(l).get("loss/largest") for l in open(r / "log.jsonl")] for r in (full, part)]
    assert losses[0] == losses[1] and len([v for v in losses[0] if v is not None]) == 6
    for (n, p), (_, q) in zip(load_checkpoint(full)[0].state_dict().items(), load_checkpoint(part)[0].state_dict().items()):
        assert torch.equal(p, q), n


def test_pack_refuses_bad_input_and_leaves_nothing_half_written(tmp_path):
    folder = jpeg_folder(tmp_path / "img")
    with pytest.raises(SupernetError, match="must lie outside the image folder"):
        pack_data(folder, folder / "packed", 32, workers=0, progress=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    with pytest.raises(SupernetError, match="exists and is not empty; pass --overwrite"):
        pack_data(folder, tmp_path / "full", 32, workers=0, progress=False)
    bad = folder / "train" / "dog" / "9.jpg"  # a JPEG whose header verifies but whose data is cut off
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(bad, quality=95)
    bad.write_bytes(bad.read_bytes()[:len(bad.read_bytes()) // 2])
    (folder / "train" / "cat" / "junk.jpg").write_bytes(b"not an image at all")  # skipped at scan, listed
    with pytest.raises(SupernetError, match=f"cannot decode image {bad}"):
        pack_data(folder, tmp_path / "packed", 32, workers=0, progress=False)
    assert not (tmp_path / "packed").exists() and not list(tmp_path.glob(".packed*"))
    bad.unlink()
    meta = pack_data(folder, tmp_path / "packed", 32, workers=0, progress=False)
    assert len(meta["skipped"]) == 1 and "junk.jpg" in meta["skipped"][0] and meta["splits"]["train"] == 18
    with pytest.raises(SupernetError, match="has no meta.json: not a packed folder; write one with `supernet data pack"):
        load_data(f"packed:{tmp_path / 'full'}")


@pytest.mark.slow
def test_cli_packs_and_refuses_in_one_line(tmp_path):
    folder = jpeg_folder(tmp_path / "img")
    done = cli("data", "pack", f"imagefolder:{folder}", "--size", "32", "--out", tmp_path / "p", "--workers", "0",
               "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "packed 18 train images (3 classes, 3 channel(s)" in done.stdout and "--data packed:" in done.stdout
    assert_one_line_error(cli("data", "pack", tmp_path / "nowhere", "--size", "32", "--out", tmp_path / "q"),
                          "has no train/ folder")
    assert_one_line_error(cli("train", "--data", f"packed:{tmp_path / 'nowhere'}", "--out", tmp_path / "r"),
                          "meta.json")


@pytest.mark.slow
def test_dali_decoder_is_refused_in_one_line_when_not_installed(tmp_path):
    try:
        import nvidia.dali  # noqa: F401
        pytest.skip("DALI is installed here")
    except ImportError:
        pass
    folder = jpeg_folder(tmp_path / "img")
    with pytest.raises(SupernetError, match="needs NVIDIA DALI, which is not installed: pip install nvidia-dali"):
        load_data(f"imagefolder:{folder}", decoder="dali")
    with pytest.raises(SupernetError, match="decodes image folders"):
        load_data("mnist1d", decoder="dali")
    assert_one_line_error(cli("train", "--data", f"imagefolder:{folder}", "--decoder", "dali", "--out",
                              tmp_path / "r"), "needs NVIDIA DALI")
    assert not (tmp_path / "r").exists()


def test_grayscale_png_folder_packs_with_one_channel(tmp_path):
    write_images(tmp_path / "g" / "train", mode="L", per_class=3)
    meta = pack_data(tmp_path / "g", tmp_path / "p", 16, workers=0, progress=False)
    a, b = both(tmp_path / "g", tmp_path / "p", size=12)
    assert meta["channels"] == 1 and not b.flip and b.info().sample_shape == (1, 12, 12)
    assert close(take(a.train_batches(0, 4, 1), 2), take(b.train_batches(0, 4, 1), 2), 1e-4)

"""Image folders (``--data imagefolder:PATH``), streamed from disk by DataLoader workers.

Layout::

    ROOT/train/<class>/*.png|jpg|jpeg     required; class names are the sorted folder names
    ROOT/val/<class>/...                  optional; else ``val_fraction`` of each train class is
                                          held out (deterministic by ``seed``)
    ROOT/test/<class>/...                 optional; else test is val (``describe()`` says so)

Images are found recursively inside each class folder; hidden files and folders (``.*``)
and other extensions are ignored. The first readable training image decides the channels
(1 for grayscale modes ``L``/``LA``/``I``..., else 3: RGB) and ``native_size`` (its shorter
side); every image is converted to those channels. Images are decoded with Pillow and transformed in torch
(:mod:`supernet.data.image_transforms`) inside DataLoader worker processes; nothing is loaded whole.

**Unreadable files** are skipped and counted: at scan time every file is opened and
``verify()``-ed by Pillow (the header for JPEG, every chunk's CRC for PNG); the ones that
fail are left out and listed in ``describe()["skipped"]``. A file that passes that check but
cannot be decoded later (a truncated JPEG) stops the run with a one-line ``SupernetError``
naming it, raised in the main process (never a worker traceback): delete or replace it and
resume from the last checkpoint (the epoch order then changes, as the file list did).

**Augmentation** (training batches only): random-resized crop to the output side, with area
``scale`` (default ``(0.25, 1.0)``) and aspect ratio in (3/4, 4/3), then a horizontal flip.
The default scale is milder than ImageNet's (0.08, 1): on small images (28-64 px) an 8%
crop keeps a few pixels of the object, and a supernet's smallest subnets underfit rather
than overfit; pass ``scale=(0.08, 1.0)`` for the ImageNet recipe. ``flip=None`` (default)
flips colour data sets and not grayscale ones: mirroring keeps the label of a photo, but not
of a digit, a letter or a document, which is what grayscale folders usually hold; pass
``flip=True`` or ``False`` to decide yourself. **Normalisation**: ``(x - mean) / std`` per
channel on values in [0, 1]; default ImageNet's mean/std for colour and 0.5/0.5 for
grayscale (fixed, so no pass over the data is needed and every run normalises alike).

**Determinism**: epoch ``e`` visits the training images in the order
``np.random.default_rng([seed, e]).permutation(n)``; sample ``p`` of step ``k`` is
augmented by ``np.random.default_rng([seed, 1, k, p])``. So step ``k`` is a pure function of
``(seed, k)``: the same whatever ``num_workers`` and whether the run resumed at ``k``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..core.data_info import DataInfo
from ..core.errors import SupernetError
from .base import shard_rows
from .image_scan import SPLITS, ImageFiles, scan_images
from .image_transforms import (
    GRAY_MEAN,
    GRAY_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    channels_of,
    eval_transform,
    load_image,
    normalise,
    train_transform,
)

PREFIX = "imagefolder:"


AUGMENT_STREAM = 1  # tags the per-sample seed [seed, 1, step, pos] apart from other streams


CALIBRATION_STREAM = 7919


class SquareImages:
    """The size half of the data protocol for image sets read as square batches: ``name``,
    ``in_channels``, ``native_size``, ``num_classes`` and ``image_size`` (None: native) set by the class."""

    def info(self) -> DataInfo:
        """Channels, the side batches are read at (native: the first training image's shorter side), classes."""
        size = self.image_size or self.native_size
        return DataInfo(self.name, (self.in_channels, size, size), num_classes=self.num_classes)

    def set_image_size(self, size: int) -> None:
        """Square side of every batch (the space's largest resolution); call before drawing batches."""
        if int(size) < 1:
            raise SupernetError(f"image size must be a positive number of pixels, got {size}")
        self.image_size = int(size)


class ImageFolderData(SquareImages):
    """A data source over an image folder (see the module docstring for layout and choices).

    ``root`` is a path or an ``imagefolder:PATH`` string. ``seed`` only decides the held-out
    validation images; batch order and augmentation take the seed given to
    :meth:`train_batches`. ``pin_memory=True`` (use it when training on CUDA) pins every batch
    so that ``x.to(device, non_blocking=True)`` overlaps the copy.
    """

    ndim = 2

    def __init__(self, root: str | os.PathLike, *, val_fraction: float = 0.1, seed: int = 0, num_workers: int = 2,
                 pin_memory: bool = False, scale: tuple[float, float] = (0.25, 1.0), flip: bool | None = None,
                 mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None):
        text = os.fspath(root)
        text = text[len(PREFIX):] if text.startswith(PREFIX) else text
        self.name, self.root = PREFIX + text, Path(text).absolute()  # absolute: workers may outlive a chdir
        if not (0.0 < scale[0] <= scale[1] <= 1.0):
            raise SupernetError(f"crop scale {tuple(scale)} must satisfy 0 < low <= high <= 1, e.g. (0.25, 1.0)")
        self.num_workers, self.pin_memory, self.scale = int(num_workers), bool(pin_memory), tuple(scale)
        self.classes, self._splits, self._notes, self.skipped, first = scan_images(self.root, val_fraction, seed)
        self.num_classes = len(self.classes)
        self.in_channels = channels_of(first[0])
        self.native_size = min(first[1])
        self.flip = self.in_channels == 3 if flip is None else bool(flip)
        self.mean, self.std = mean_std(mean, std, self.in_channels)
        self.image_size: int | None = None

    # -- protocol ---------------------------------------------------------------------
    def split_size(self, split: str) -> int:
        return len(self._files(split))

    def steps_per_epoch(self, batch_size: int) -> int:
        """Full batches per epoch (the last partial batch is dropped)."""
        n = len(self._splits["train"])
        if not 0 < batch_size <= n:
            raise SupernetError(f"batch size {batch_size} must be between 1 and the {n} training images")
        return n // batch_size

    def train_batches(self, start_step: int, batch_size: int, seed: int,
                      shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless augmented batches ``(x (B, C, S, S) float32, y (B,) int64)`` from step ``start_step`` on;
        with ``shard=(rank, world)`` only that rank's equal slice of each global batch is decoded."""
        keys = TrainKeys(len(self._splits["train"]), self.steps_per_epoch(batch_size), batch_size, seed, start_step,
                          shard_rows(batch_size, shard))
        return self._stream(self._splits["train"], keys, seed)

    def eval_batches(self, split: str, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every image of ``split`` once, in a fixed order: shorter side resized, centre crop, normalised."""
        n = len(self._files(split))
        if batch_size < 1:
            raise SupernetError(f"batch size must be at least 1, got {batch_size}")
        keys = [[(i, -1, -1) for i in range(lo, min(lo + batch_size, n))] for lo in range(0, n, batch_size)]
        return self._stream(self._files(split), keys, 0)

    def calibration_batches(self, n_batches: int, batch_size: int, seed: int) -> list[torch.Tensor]:
        """A fixed set of training inputs ``[(B, C, S, S)] * n_batches`` (eval transform, no labels)
        for BN recalibration: the same images every call for the same arguments (fewer when the
        training split holds fewer than ``n_batches * batch_size`` images)."""
        train = self._splits["train"]
        order = np.random.default_rng([seed, CALIBRATION_STREAM]).permutation(len(train))
        pick = order[:min(len(train), n_batches * batch_size)]
        keys = [[(int(i), -1, -1) for i in pick[lo:lo + batch_size]] for lo in range(0, len(pick), batch_size)]
        return [x for x, _ in self._stream(train, keys, 0)]

    def describe(self) -> dict:
        size = self.image_size or self.native_size
        return {"data": self.name, "root": str(self.root), "num_classes": self.num_classes,
                **{split: len(self._files(split)) for split in SPLITS}, **self._notes,
                "input_shape": [self.in_channels, size, size], "flip": self.flip, "crop_scale": list(self.scale),
                "mean": list(self.mean), "std": list(self.std), "skipped_files": len(self.skipped),
                "skipped": [f"{p}: {why}" for p, why in self.skipped[:20]]}

    # -- loading ------------------------------------------------------------------------
    def _files(self, split: str) -> ImageFiles:
        if split not in SPLITS:
            raise SupernetError(f"unknown split {split!r}; use one of {list(SPLITS)}")
        return self._splits[split]

    def _stream(self, files: ImageFiles, keys, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.image_size is None:
            raise RuntimeError("call set_image_size(size) before drawing batches")
        samples = _Samples(str(self.root), files, self.in_channels, self.image_size, self.mean, self.std,
                           self.scale, self.flip, seed)
        # An own generator: DataLoader would otherwise draw its workers' base seed from torch's global RNG.
        loader = DataLoader(samples, batch_sampler=keys, num_workers=self.num_workers, collate_fn=_collate,
                            pin_memory=self.pin_memory and torch.cuda.is_available(),
                            generator=torch.Generator().manual_seed(0))
        return _checked(loader)


class TrainKeys:
    """Endless lists of sample keys ``(image index, step, position)``, one list per step from ``start``."""

    def __init__(self, n: int, steps_per_epoch: int, batch_size: int, seed: int, start: int,
                 rows: tuple[int, int] | None = None):
        self.n, self.steps, self.batch, self.seed, self.start = n, steps_per_epoch, batch_size, seed, start
        self.rows = rows or (0, batch_size)

    def __iter__(self):
        epoch, order = -1, None
        step = self.start
        while True:
            e, i = divmod(step, self.steps)
            if e != epoch:
                epoch, order = e, np.random.default_rng([self.seed, e]).permutation(self.n)
            yield [(int(order[i * self.batch + p]), step, p) for p in range(*self.rows)]
            step += 1


class _Samples(Dataset):
    """Decodes and transforms one image per key in a worker: ``(x (C, S, S), label, error or "")``.

    A key ``(index, step, position)`` with ``step >= 0`` is augmented from
    ``default_rng([seed, 1, step, position])``; ``step < 0`` takes the eval transform.
    """

    def __init__(self, root: str, files: ImageFiles, channels: int, size: int, mean, std, scale, flip: bool, seed: int):
        self.root, self.files, self.channels, self.size = root, files, channels, size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)  # (C, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.scale, self.flip, self.seed = scale, flip, seed

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key):
        index, step, pos = key
        label = int(self.files.labels[index])
        path = os.path.join(self.root, os.fsdecode(self.files.paths[index]))
        try:
            img = load_image(path, self.channels)  # (C, H, W)
        except Exception as exc:  # Pillow raises many types for a broken file; reported by _checked
            return torch.zeros(self.channels, self.size, self.size), label, f"{path}: {type(exc).__name__}: {exc}"
        if step >= 0:
            rng = np.random.default_rng([self.seed, AUGMENT_STREAM, step, pos])
            img = train_transform(img, self.size, rng, self.scale, self.flip)
        else:
            img = eval_transform(img, self.size)
        return normalise(img, self.mean, self.std), label, ""


def _collate(samples):
    xs, ys, errors = zip(*samples)
    return torch.stack(xs), torch.tensor(ys, dtype=torch.long), [e for e in errors if e]  # (B, C, S, S), (B,)


def _checked(loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)``; a file that failed to decode in a worker becomes one clear SupernetError."""
    batches = iter(loader)
    try:
        for x, y, errors in batches:
            if errors:
                raise SupernetError(f"cannot decode image {errors[0]}; delete or replace the file, then run the "
                                    "command again (with --resume when a checkpoint was saved)")
            yield x, y
    finally:
        del batches  # shuts the workers down now, not when the generator is collected


def mean_std(mean, std, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    default_mean, default_std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else (GRAY_MEAN, GRAY_STD)
    mean = tuple(float(m) for m in (default_mean if mean is None else mean))
    std = tuple(float(s) for s in (default_std if std is None else std))
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise SupernetError(f"mean {mean} and std {std} need {channels} value(s) each (std > 0) for these "
                            f"{'grayscale' if channels == 1 else 'colour'} images")
    return mean, std

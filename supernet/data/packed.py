"""Packed images (``--data packed:DIR``, written by ``supernet data pack``), augmented in batch on the device.

A background thread gathers each step's images from the memory-mapped shards (only the rows and
columns of each sample's crop window) into one padded uint8 batch, pinned when the device is a
GPU; the device then crops, resizes, flips and normalises the whole batch at once
(:mod:`supernet.data.batch_transforms`). No decoding, no worker processes.

**Same batches as the image folder.** Order and augmentation are drawn exactly as
:mod:`supernet.data.imagefolder` draws them: epoch ``e`` visits the training images in the order
``default_rng([seed, e]).permutation(n)``, sample ``p`` of step ``k`` takes its crop box on the
image's *original* size and its flip from ``default_rng([seed, 1, k, p])``, evaluation takes the
centred square; so step ``k`` is a pure function of ``(seed, k)`` (a resumed run continues
exactly) and the held-out validation split is the same. The box is mapped onto the stored image
(``x * stored / original``). Where the pack kept an image at its original size (its shorter side
was at most ``--size``), the batch equals the image folder's up to float rounding (1e-5);
where the pack shrank it, the crop resamples the shrunk image instead of the original, a
difference of the order of the resize's own rounding (resample a 256 px image once or twice).
"""
from __future__ import annotations

import json
import math
import os
import queue
import threading
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ..core.errors import SupernetError
from .base import shard_rows
from .batch_transforms import crop_resize_batch, normalise_batch
from .image_scan import SPLITS, held_out
from .image_transforms import centre_square_box, random_crop_box
from .imagefolder import AUGMENT_STREAM, CALIBRATION_STREAM, SquareImages, mean_std, TrainKeys
from .pack import FORMAT

PREFIX = "packed:"


class PackedData(SquareImages):
    """A data source over a packed folder; the protocol of :mod:`supernet.data.base`.

    ``device`` is where training and evaluation batches are augmented and delivered (calibration
    batches stay on the CPU); ``seed`` decides the held-out validation images of a pack without
    ``val/``; ``scale``, ``flip``, ``mean``, ``std`` as :class:`~supernet.data.imagefolder.ImageFolderData`.
    """

    ndim = 2

    def __init__(self, root: str | os.PathLike, *, val_fraction: float = 0.1, seed: int = 0, device="cpu",
                 scale: tuple[float, float] = (0.25, 1.0), flip: bool | None = None, mean=None, std=None,
                 prefetch: int = 2):
        text = os.fspath(root)
        text = text[len(PREFIX):] if text.startswith(PREFIX) else text
        self.name, self.root = PREFIX + text, Path(text).absolute()
        meta = _meta(self.root)
        if meta.get("format") != FORMAT:
            raise SupernetError(f"{str(self.root)!r} is not a packed folder; write one with `supernet data pack`")
        if not (0.0 < scale[0] <= scale[1] <= 1.0):
            raise SupernetError(f"crop scale {tuple(scale)} must satisfy 0 < low <= high <= 1, e.g. (0.25, 1.0)")
        self.meta, self.classes, self.in_channels = meta, meta["classes"], int(meta["channels"])
        self.num_classes, self.scale, self.prefetch = len(self.classes), tuple(scale), int(prefetch)
        self.device = torch.device(device)
        self._index = {s: np.load(self.root / f"{s}.index.npy") for s in meta["splits"]}
        self._labels = {s: np.load(self.root / f"{s}.labels.npy") for s in meta["splits"]}
        for split in meta["splits"]:
            _check_shards(self.root, split, self._index[split], self.in_channels)
        self._splits = self._layout(val_fraction, seed)
        self.native_size = int(self._index["train"][0, 4:6].min())
        self.flip = self.in_channels == 3 if flip is None else bool(flip)
        self.mean, self.std = mean_std(mean, std, self.in_channels)
        self.image_size: int | None = None
        self._maps: dict = {}

    def _layout(self, val_fraction: float, seed: int) -> dict[str, tuple[str, np.ndarray]]:
        """split -> (stored split, its rows): the image folder's rules (held-out val, test = val)."""
        train = np.arange(len(self._labels["train"]))
        splits = {"train": ("train", train)}
        if "val" in self._labels:
            splits["val"] = ("val", np.arange(len(self._labels["val"])))
        else:
            is_val = held_out(self._labels["train"], val_fraction, seed, self.root)
            splits["train"], splits["val"] = ("train", train[~is_val]), ("train", train[is_val])
        splits["test"] = ("test", np.arange(len(self._labels["test"]))) if "test" in self._labels else splits["val"]
        return splits

    def __getstate__(self):
        return {**self.__dict__, "_maps": {}}  # memory maps are reopened where the object lands

    # -- protocol ---------------------------------------------------------------------
    def split_size(self, split: str) -> int:
        return len(self._rows(split)[1])

    def steps_per_epoch(self, batch_size: int) -> int:
        n = self.split_size("train")
        if not 0 < batch_size <= n:
            raise SupernetError(f"batch size {batch_size} must be between 1 and the {n} training images")
        return n // batch_size

    def train_batches(self, start_step: int, batch_size: int, seed: int,
                      shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless augmented batches ``(x (B, C, S, S) float32 on the device, y (B,) int64)`` from ``start_step``."""
        stored, rows = self._rows("train")
        keys = TrainKeys(len(rows), self.steps_per_epoch(batch_size), batch_size, seed, start_step,
                          shard_rows(batch_size, shard))
        return self._stream(stored, rows, keys, seed, self.device)

    def eval_batches(self, split: str, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        stored, rows = self._rows(split)
        if batch_size < 1:
            raise SupernetError(f"batch size must be at least 1, got {batch_size}")
        keys = [[(i, -1, -1) for i in range(lo, min(lo + batch_size, len(rows)))] for lo in range(0, len(rows), batch_size)]
        return self._stream(stored, rows, keys, 0, self.device)

    def calibration_batches(self, n_batches: int, batch_size: int, seed: int) -> list[torch.Tensor]:
        stored, rows = self._rows("train")
        order = np.random.default_rng([seed, CALIBRATION_STREAM]).permutation(len(rows))
        pick = order[:min(len(rows), n_batches * batch_size)]
        keys = [[(int(i), -1, -1) for i in pick[lo:lo + batch_size]] for lo in range(0, len(pick), batch_size)]
        return [x for x, _ in self._stream(stored, rows, keys, 0, torch.device("cpu"))]

    def describe(self) -> dict:
        size = self.image_size or self.native_size
        return {"data": self.name, "root": str(self.root), "num_classes": self.num_classes,
                **{split: self.split_size(split) for split in SPLITS}, "layout": self.meta["layout"],
                "packed_size": self.meta["size"], "source": self.meta["source"],
                "input_shape": [self.in_channels, size, size], "flip": self.flip, "crop_scale": list(self.scale),
                "mean": list(self.mean), "std": list(self.std), "augment_device": str(self.device),
                "skipped_files": len(self.meta["skipped"]), "skipped": self.meta["skipped"][:20]}

    # -- batches ------------------------------------------------------------------------
    def _rows(self, split: str) -> tuple[str, np.ndarray]:
        if split not in SPLITS:
            raise SupernetError(f"unknown split {split!r}; use one of {list(SPLITS)}")
        return self._splits[split]

    def _map(self, split: str, shard: int) -> np.memmap:
        key = (split, shard)
        if key not in self._maps:
            self._maps[key] = np.memmap(self.root / f"{split}-{shard:05d}.u8", dtype=np.uint8, mode="r")
        return self._maps[key]

    def _stream(self, stored: str, rows: np.ndarray, keys, seed: int, device: torch.device):
        if self.image_size is None:
            raise RuntimeError("call set_image_size(size) before drawing batches")
        pin = device.type == "cuda"
        host = (self._gather(stored, rows, batch, seed, pin) for batch in keys)
        for images, boxes, flips, labels in _prefetched(host, self.prefetch):
            images = images.to(device, non_blocking=pin).permute(0, 3, 1, 2)  # (B, C, H, W) uint8
            x = crop_resize_batch(images, boxes, self.image_size, flips)
            yield normalise_batch(x, self.mean, self.std), labels

    def _gather(self, stored: str, rows: np.ndarray, keys, seed: int, pin: bool):
        """Host side of one batch: the crop windows ``(B, Hc, Wc, C)`` uint8 (zero-padded), the boxes inside
        them ``(B, 4)`` float64, the flips ``(B,)`` and the labels ``(B,)``."""
        index, labels = self._index[stored], self._labels[stored]
        windows, boxes, flips = [], [], []
        for i, step, pos in keys:
            shard, offset, h, w, h0, w0 = (int(v) for v in index[rows[i]])
            flip = False
            if step >= 0:
                rng = np.random.default_rng([seed, AUGMENT_STREAM, step, pos])
                top, left, bh, bw = random_crop_box(h0, w0, rng, self.scale)
                flip = self.flip and rng.random() < 0.5
            else:
                top, left, bh, bw = centre_square_box(h0, w0)
            fy, fx = h / h0, w / w0
            top, left, bh, bw = top * fy, left * fx, bh * fy, bw * fx
            r0, c0 = math.floor(top), math.floor(left)
            r1, c1 = min(h, math.ceil(top + bh)), min(w, math.ceil(left + bw))
            image = self._map(stored, shard)[offset:offset + h * w * self.in_channels].reshape(h, w, self.in_channels)
            windows.append(image[r0:r1, c0:c1])
            boxes.append((top - r0, left - c0, bh, bw))
            flips.append(flip)
        height, width = max(a.shape[0] for a in windows), max(a.shape[1] for a in windows)
        batch = torch.zeros((len(windows), height, width, self.in_channels), dtype=torch.uint8, pin_memory=pin)
        out = batch.numpy()
        for b, window in enumerate(windows):
            out[b, :window.shape[0], :window.shape[1]] = window
        y = torch.as_tensor(labels[rows[[k[0] for k in keys]]], dtype=torch.long)
        return batch, torch.tensor(boxes, dtype=torch.float64), torch.tensor(flips), y


def _check_shards(root: Path, split: str, index: np.ndarray, channels: int) -> None:
    """Each shard file of ``split`` holds every byte its index rows point at: ``offset + h * w * channels``
    at most its size (a file cut short by a full disk or a partial copy is refused here, not mid-training)."""
    if len(index) == 0:
        return
    ends = index[:, 1] + index[:, 2] * index[:, 3] * channels
    for shard in np.unique(index[:, 0]):
        path = root / f"{split}-{int(shard):05d}.u8"
        need = int(ends[index[:, 0] == shard].max())
        have = path.stat().st_size if path.is_file() else None
        if have is None or have < need:
            found = "is missing" if have is None else f"holds {have} bytes"
            raise SupernetError(f"packed shard {str(path)!r} {found} but its index needs {need}: the folder is "
                                "damaged (cut short or partly copied); pack it again with `supernet data pack`")


def _meta(root: Path) -> dict:
    try:
        return json.loads((root / "meta.json").read_text())
    except FileNotFoundError:
        raise SupernetError(f"{str(root)!r} has no meta.json: not a packed folder; write one with "
                            "`supernet data pack imagefolder:PATH --size S --out DIR`") from None
    except (OSError, ValueError) as exc:
        raise SupernetError(f"cannot read {str(root / 'meta.json')!r} ({exc}); pack the folder again") from None


_END = object()


def _prefetched(items: Iterator, depth: int) -> Iterator:
    """``items`` produced ``depth`` ahead by a background thread (in order; its errors re-raised here)."""
    if depth < 1:
        yield from items
        return
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def work():
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # noqa: BLE001  (handed to the consumer)
            put(exc)
    thread = threading.Thread(target=work, daemon=True, name="packed-prefetch")
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()

"""Image folders with their JPEGs decoded on the GPU by NVIDIA DALI (``--decoder dali``; optional).

Only training batches change hands: DALI's nvJPEG decoder (``device="mixed"``) decodes just the
crop window of each file (``fn.decoders.image_slice``), resizes it with its antialiased linear
filter, mirrors and normalises on the GPU. The crop boxes and flips are drawn on the host exactly
as :mod:`supernet.data.imagefolder` draws them (``default_rng([seed, 1, step, position])`` on each
image's original size, read from its header), and the order is the same, so a run gives the same
batches as ``--decoder pil`` up to the decoders' own rounding (nvJPEG's inverse DCT and DALI's
resampling differ from Pillow's and PyTorch's by a few levels of 255) and stays a pure function
of ``(seed, step)``. Evaluation and calibration batches keep the Pillow path. EXIF orientation
is ignored, as Pillow's reader ignores it.

DALI is an optional dependency (``pip install nvidia-dali-cuda120`` or ``nvidia-dali-cuda130``,
matching the CUDA of torch); asking for it without it is one clear error.
"""
from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
import torch
from PIL import Image

from ..core.errors import SupernetError
from .base import shard_rows
from .image_transforms import random_crop_box
from .imagefolder import AUGMENT_STREAM, ImageFolderData, TrainKeys

INSTALL = "pip install nvidia-dali-cuda120 (or nvidia-dali-cuda130, matching torch's CUDA)"


def import_dali():
    """``nvidia.dali``, or one line saying how to install it."""
    try:
        import nvidia.dali
    except ImportError:
        raise SupernetError(f"--decoder dali needs NVIDIA DALI, which is not installed: {INSTALL}; or use "
                            "--decoder pil, or pack the folder once with `supernet data pack`") from None
    return nvidia.dali


class DaliImageFolderData(ImageFolderData):
    """:class:`ImageFolderData` whose training batches are decoded and augmented on ``device`` by DALI."""

    def __init__(self, root, *, device="cuda", threads: int = 4, **options):
        import_dali()
        super().__init__(root, **options)
        self.device, self.threads = torch.device(device), int(threads)

    def describe(self) -> dict:
        return {**super().describe(), "decoder": "dali"}

    def train_batches(self, start_step: int, batch_size: int, seed: int, shard: tuple[int, int] = (0, 1)):
        if self.device.type != "cuda" or not torch.cuda.is_available():
            raise SupernetError("--decoder dali decodes on a CUDA GPU; train with --device cuda, or use --decoder pil")
        if self.image_size is None:
            raise RuntimeError("call set_image_size(size) before drawing batches")
        lo, hi = shard_rows(batch_size, shard)
        files = self._splits["train"]
        keys = TrainKeys(len(files), self.steps_per_epoch(batch_size), batch_size, seed, start_step, (lo, hi))
        pipe = _pipeline(hi - lo, self.threads, self.device.index or 0, self.image_size, self.in_channels,
                         tuple(255 * m for m in self.mean), tuple(255 * s for s in self.std))
        pipe.build()
        for batch in keys:
            paths = [os.path.join(str(self.root), os.fsdecode(files.paths[i])) for i, _, _ in batch]
            anchors, shapes, flips = [], [], []
            for path, (_, step, pos) in zip(paths, batch):
                width, height = _size(path)
                rng = np.random.default_rng([seed, AUGMENT_STREAM, step, pos])
                top, left, h, w = random_crop_box(height, width, rng, self.scale)
                anchors.append(np.array([left, top], dtype=np.float32))
                shapes.append(np.array([w, h], dtype=np.float32))
                flips.append(np.array(int(self.flip and rng.random() < 0.5), dtype=np.int32))
            pipe.feed_input("jpegs", [np.fromfile(p, dtype=np.uint8) for p in paths])
            pipe.feed_input("anchor", anchors)
            pipe.feed_input("shape", shapes)
            pipe.feed_input("flip", flips)
            (images,) = pipe.run()
            x = torch.as_tensor(images.as_tensor(), device=self.device).clone()  # DALI reuses its buffers
            yield x, torch.as_tensor(files.labels[[i for i, _, _ in batch]], dtype=torch.long)


@lru_cache(maxsize=1 << 16)
def _size(path: str) -> tuple[int, int]:
    """``(width, height)`` from the image's header."""
    with Image.open(path) as img:
        return img.size


def _pipeline(batch: int, threads: int, device_id: int, size: int, channels: int, mean, std):
    """DALI pipeline: encoded files + crop anchors/shapes/flips in, ``(B, C, size, size)`` float32 out."""
    dali = import_dali()
    from nvidia.dali import fn, types

    @dali.pipeline_def(batch_size=batch, num_threads=threads, device_id=device_id, exec_async=False,
                       exec_pipelined=False, prefetch_queue_depth=1)
    def pipe():
        jpegs = fn.external_source(name="jpegs", dtype=types.UINT8)
        anchor = fn.external_source(name="anchor", dtype=types.FLOAT)
        shape = fn.external_source(name="shape", dtype=types.FLOAT)
        flip = fn.external_source(name="flip", dtype=types.INT32)
        images = fn.decoders.image_slice(jpegs, anchor, shape, device="mixed", normalized_anchor=False,
                                         normalized_shape=False, adjust_orientation=False,
                                         output_type=types.RGB if channels == 3 else types.GRAY)
        images = fn.resize(images, resize_x=size, resize_y=size, interp_type=types.INTERP_LINEAR, antialias=True)
        return fn.crop_mirror_normalize(images, mirror=flip, mean=list(mean), std=list(std), output_layout="CHW",
                                        dtype=types.FLOAT)
    return pipe()

"""Image transforms in torch (no torchvision): decode, random-resized crop, flip, resize, normalise.

Every function is pure: randomness comes from the ``numpy.random.Generator`` it is given.
Images are ``uint8`` tensors ``(C, H, W)`` until :func:`to_float`; outputs are ``float32``
``(C, S, S)``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GRAY_MEAN, GRAY_STD = (0.5,), (0.5,)


def channels_of(mode: str) -> int:
    """1 for grayscale PIL modes (``L``, ``LA``, ``I``, ``I;16``, ``1``, ``F``), else 3."""
    return 1 if mode in GRAY_MODES else 3


def load_image(path: str, channels: int) -> torch.Tensor:
    """Decode ``path`` into a float32 tensor ``(channels, H, W)`` with values in [0, 1].

    Colour images become RGB (alpha dropped, palettes expanded); grayscale images
    become one channel. 16/32-bit grayscale (``I`` modes) is scaled by 1/65535,
    ``F`` images are taken as they are, everything else by 1/255.
    """
    with Image.open(path) as img:
        img.load()
        if img.mode.startswith("I") or img.mode == "F":
            scale = 1.0 / 65535.0 if img.mode.startswith("I") else 1.0
            arr = np.asarray(img, dtype=np.float32)[..., None] * scale  # (H, W, 1)
            arr = np.repeat(arr, channels, axis=2)  # (H, W, channels)
        elif channels == 3:
            arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3)
        else:
            arr = np.asarray(img.convert("L"), dtype=np.float32)[..., None] / 255.0  # (H, W, 1)
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)  # (C, H, W)


def random_crop_box(height: int, width: int, rng: np.random.Generator, scale: tuple[float, float],
                    ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a random crop covering ``scale`` of the area with aspect ``ratio``.

    The Inception / RandomResizedCrop rule: up to 10 tries of area ``A * U(scale)`` and
    aspect ``exp(U(log ratio))``; if none fits, the largest centred crop whose aspect is
    clamped into ``ratio``.
    """
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif aspect > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def centre_square_box(height: int, width: int) -> tuple[int, int, int, int]:
    """``(top, left, side, side)``: the centred square on the shorter side."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def crop_resize(img: torch.Tensor, box: tuple[int, int, int, int], size: int) -> torch.Tensor:
    """Crop ``box`` out of ``img`` (C, H, W) and resize it to (C, size, size), bilinear with antialiasing."""
    top, left, h, w = box
    crop = img[:, top:top + h, left:left + w]  # (C, h, w)
    if (h, w) == (size, size):
        return crop.contiguous()
    out = F.interpolate(crop[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return out[0]  # (C, size, size)


def normalise(img: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``(img - mean) / std`` per channel; ``mean`` and ``std`` are (C, 1, 1)."""
    return (img - mean) / std


def train_transform(img: torch.Tensor, size: int, rng: np.random.Generator, scale: tuple[float, float],
                    flip: bool) -> torch.Tensor:
    """Random-resized crop to (C, size, size), then a horizontal flip with probability 1/2 when ``flip``."""
    box = random_crop_box(img.shape[1], img.shape[2], rng, scale)
    out = crop_resize(img, box, size)
    if flip and rng.random() < 0.5:
        out = out.flip(-1)
    return out


def eval_transform(img: torch.Tensor, size: int) -> torch.Tensor:
    """Resize the shorter side to ``size`` and keep the centred ``size`` x ``size`` square."""
    return crop_resize(img, centre_square_box(img.shape[1], img.shape[2]), size)

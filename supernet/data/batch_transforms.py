"""Random-resized crop, flip and normalisation of a whole batch at once, on any device.

Each sample's crop (a box in its own pixel coordinates, fractional allowed) is resized to
``size x size`` by two matrix products, ``out = Wy @ img @ Wx^T``, with one pair of weight
matrices per sample. The weights are those of ``F.interpolate(crop, mode="bilinear",
antialias=True, align_corners=False)``, PyTorch's (and Pillow's) antialiased bilinear filter:
output pixel ``i`` of a crop ``[start, start + length)`` resized to ``n`` pixels, with
``scale = length / n`` and ``s = max(scale, 1)``, takes input pixel ``j`` with weight

    w(i, j) = max(0, 1 - |(j + 0.5 - start - scale * (i + 0.5)) / s|)   for pixel centres j + 0.5 inside the crop,

normalised over ``j``. For an integer box this is exactly the image-folder path's
:func:`~supernet.data.image_transforms.crop_resize` (up to float summation order); a horizontal
flip reverses the rows of ``Wx``. So a batch of padded uint8 crops is transformed by a handful
of batched kernels, wherever the batch lives.
"""
from __future__ import annotations

import torch


def resize_weights(start: torch.Tensor, length: torch.Tensor, pixels: int, size: int) -> torch.Tensor:
    """``(B, size, pixels)`` antialiased bilinear weights resizing ``[start, start + length)`` of an axis of
    ``pixels`` pixels to ``size`` (``start``, ``length``: ``(B,)`` float64 tensors)."""
    scale = length / size  # (B,)
    support = scale.clamp(min=1.0)
    centre = start[:, None] + scale[:, None] * (torch.arange(size, dtype=start.dtype, device=start.device) + 0.5)
    j = torch.arange(pixels, dtype=start.dtype, device=start.device) + 0.5  # pixel centres
    w = (1 - ((j[None, None] - centre[:, :, None]) / support[:, None, None]).abs()).clamp(min=0)  # (B, size, pixels)
    inside = (j[None] > start[:, None]) & (j[None] < (start + length)[:, None])  # (B, pixels)
    w = w * inside[:, None, :]
    return w / w.sum(-1, keepdim=True).clamp(min=1e-12)


def crop_resize_batch(images: torch.Tensor, boxes: torch.Tensor, size: int, flips: torch.Tensor | None = None,
                      scale: float = 1.0 / 255.0) -> torch.Tensor:
    """``images`` ``(B, C, H, W)`` (uint8 or float; samples padded to a common H, W) -> ``(B, C, size, size)``
    float32 in ``[0, 1]`` for uint8 (times ``scale``): each sample's ``boxes[b] = (top, left, h, w)``
    resized to ``size``, mirrored left-right where ``flips[b]``."""
    b, _, height, width = images.shape
    boxes = boxes.to(device=images.device, dtype=torch.float64)
    wy = resize_weights(boxes[:, 0], boxes[:, 2], height, size).float()  # (B, S, H)
    wx = resize_weights(boxes[:, 1], boxes[:, 3], width, size)  # (B, S, W)
    if flips is not None:
        flips = flips.to(images.device).bool()
        wx = torch.where(flips[:, None, None], wx.flip(1), wx)
    wx = wx.float()
    x = images.float()
    out = torch.matmul(torch.matmul(wy[:, None], x), wx.transpose(1, 2)[:, None])  # (B, C, S, S)
    return out * scale


def normalise_batch(x: torch.Tensor, mean, std) -> torch.Tensor:
    """``(x - mean) / std`` per channel of a ``(B, C, H, W)`` batch."""
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std

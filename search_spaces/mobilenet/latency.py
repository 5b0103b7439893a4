"""Latency units of the mobilenet space: the pieces an OFA-style lookup table times.

An arch's network is ``stem -> blocks -> head``; each piece's cost depends only on its
own configuration and input shape, so it is measured once in isolation and looked up.
``units(config, arch)`` lists the pieces of one arch; ``all_units(config)`` every piece any
arch can contain (each block configuration at every input size it can see).
"""
from __future__ import annotations

from typing import Callable, Iterator

from torch import nn

from .blocks import make_divisible
from .config import BlockSpec, MobileNetConfig, block_plan, conv_out_size
from .static import build_block, build_head, build_stem

Unit = tuple[str, Callable[[], nn.Module], tuple[int, ...]]  # (key, build module, input shape without batch)


def _style(c: MobileNetConfig) -> str:
    """Key suffix of the options that change a unit's ops (empty for MobileNetV3's, so older tables keep theirs)."""
    return "-relu6" if c.relu6 else ""


def _stem(c: MobileNetConfig, r: int) -> Unit:
    return f"stem{_style(c)}@{r}", lambda: build_stem(c), (c.in_channels,) + (r,) * c.ndim


def _block(c: MobileNetConfig, b: BlockSpec, size: int) -> Unit:
    hidden = make_divisible(b.cin * b.expand)
    key = f"mb:{b.cin}-{b.cout}-s{b.stride}-k{b.kernel}-h{hidden}-se{int(b.use_se)}-hs{int(b.hswish)}{_style(c)}@{size}"
    return key, lambda: build_block(c, b), (b.cin,) + (size,) * c.ndim


def _head(c: MobileNetConfig, size: int) -> Unit:
    mix = "" if c.head_features else "-nomix"
    return f"head{_style(c)}{mix}@{size}", lambda: build_head(c, 0.0), (c.widths[-1],) + (size,) * c.ndim


def units(config: MobileNetConfig, arch) -> list[Unit]:
    """The stem, every active block and the head of ``arch``, with their input shapes."""
    c = config
    size = conv_out_size(arch["r"], c.stem_stride)
    out = [_stem(c, arch["r"])]
    for b in block_plan(c, arch):
        out.append(_block(c, b, size))
        size = conv_out_size(size, b.stride)
    out.append(_head(c, size))
    return out


def all_units(config: MobileNetConfig) -> Iterator[Unit]:
    """Every distinct unit of the space (first and later block of each stage, each k and e, each r)."""
    c, seen = config, set()
    for r in c.resolutions:
        size, cin = conv_out_size(r, c.stem_stride), c.first_channels
        candidates = [_stem(c, r)]
        for s, width in enumerate(c.widths):
            for first in (True, False)[:2 if s < c.searched_stages else 1]:
                stride = c.strides[s] if first else 1
                block_in = cin if first else width
                at = size if first else conv_out_size(size, c.strides[s])
                for k in c.kernels:
                    for e in c.expands:
                        spec = BlockSpec(-1, block_in, width, stride, k, e, c.use_se[s], c.hswish[s])
                        candidates.append(_block(c, spec, at))
            size, cin = conv_out_size(size, c.strides[s]), width
        candidates.append(_head(c, size))
        for unit in candidates:
            if unit[0] not in seen:
                seen.add(unit[0])
                yield unit

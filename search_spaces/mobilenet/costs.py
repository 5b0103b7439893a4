"""Exact multiply-adds and parameters of a mobilenet subnet, counted analytically."""
from __future__ import annotations

from supernet.core.arch import Arch

from .blocks import make_divisible, se_channels
from .config import MobileNetConfig, block_plan, conv_out_size


def _conv(ndim, size_out, cin, cout, k, groups=1) -> tuple[int, int]:
    """(MACs, weights) of one conv: ``out_positions * cout * (cin / groups) * k^ndim``."""
    weights = cout * (cin // groups) * k ** ndim
    return size_out ** ndim * weights, weights


def _tally(config: MobileNetConfig, arch: Arch) -> tuple[int, int]:
    """(multiply-adds, parameters) of the static subnet for one input at resolution ``r``.

    MACs count convolutions and linear layers (the MobileNet / OFA convention, and what
    ``torch.utils.flop_counter`` counts, divided by 2). Parameters count everything.
    """
    c, n = config, config.ndim
    size = conv_out_size(arch["r"], c.stem_stride)
    macs, params = 0, 0

    def add(pair, extra_params=0):
        nonlocal macs, params
        macs, params = macs + pair[0], params + pair[1] + extra_params

    add(_conv(n, size, c.in_channels, c.stem_channels, 3), 2 * c.stem_channels)
    add(_conv(n, size, c.stem_channels, c.stem_channels, 3, c.stem_channels), 2 * c.stem_channels)
    add(_conv(n, size, c.stem_channels, c.first_channels, 1), 2 * c.first_channels)
    for b in block_plan(config, arch):
        hidden = make_divisible(b.cin * b.expand)
        add(_conv(n, size, b.cin, hidden, 1), 2 * hidden)
        size = conv_out_size(size, b.stride)
        add(_conv(n, size, hidden, hidden, b.kernel, hidden), 2 * hidden)
        if b.use_se:
            mid = se_channels(hidden)
            add(_conv(n, 1, hidden, mid, 1), mid)
            add(_conv(n, 1, mid, hidden, 1), hidden)
        add(_conv(n, size, hidden, b.cout, 1), 2 * b.cout)
    add(_conv(n, size, c.widths[-1], c.head_expand, 1), 2 * c.head_expand)
    if c.head_features:
        add((c.head_expand * c.head_features,) * 2)
    add(((c.head_features or c.head_expand) * c.num_classes,) * 2, c.num_classes)
    return macs, params


def count_macs(config: MobileNetConfig, arch: Arch) -> int:
    return _tally(config, arch)[0]


def count_params(config: MobileNetConfig, arch: Arch) -> int:
    return _tally(config, arch)[1]

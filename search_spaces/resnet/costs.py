"""Exact multiply-adds and parameters of a resnet subnet, counted analytically."""
from __future__ import annotations

from supernet.core.arch import Arch

from .config import ResNetConfig, block_plan, conv_out_size, stem_plan


def _conv(size_out: int, cin: int, cout: int, k: int) -> tuple[int, int]:
    """(MACs, parameters) of a bias-free conv followed by batch norm:
    ``(size_out^2 * cout * cin * k^2, cout * cin * k^2 + 2 * cout)``."""
    weights = cout * cin * k * k
    return size_out * size_out * weights, weights + 2 * cout


def _tally(config: ResNetConfig, arch: Arch) -> tuple[int, int]:
    """(multiply-adds, parameters) of the static subnet for one input at resolution ``r``.

    MACs count convolutions and the linear layer (OFA's convention, and what
    ``torch.utils.flop_counter`` counts, divided by 2); pools, BN and additions are not counted.
    Parameters count everything (conv weights, BN affine pairs, the classifier's weight and bias).
    """
    stem, plan = stem_plan(config, arch), block_plan(config, arch)
    size = conv_out_size(arch["r"], 2)
    parts = [_conv(size, config.in_channels, stem.mid, 3), _conv(size, stem.mid, stem.out, 3)]
    if stem.residual:
        parts.append(_conv(size, stem.mid, stem.mid, 3))
    size = conv_out_size(size, 2)  # max pool
    for b in plan:
        out = conv_out_size(size, b.stride)
        parts += [_conv(size, b.cin, b.mid, 1), _conv(out, b.mid, b.mid, 3), _conv(out, b.mid, b.cout, 1)]
        if b.downsample:
            parts.append(_conv(out, b.cin, b.cout, 1))
        size = out
    features = plan[-1].cout if plan else stem.out
    parts.append((features * config.num_classes, features * config.num_classes + config.num_classes))
    return sum(m for m, _ in parts), sum(p for _, p in parts)


def count_macs(config: ResNetConfig, arch: Arch) -> int:
    return _tally(config, arch)[0]


def count_params(config: ResNetConfig, arch: Arch) -> int:
    return _tally(config, arch)[1]

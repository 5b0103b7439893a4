"""Latency units of the resnet space: the pieces an OFA-style lookup table times.

An arch's network is ``stem -> bottlenecks -> head``; each piece's cost depends only on its own
configuration and input shape, so it is measured once in isolation and looked up.
``units(config, arch)`` lists the pieces of one arch; ``all_units(config)`` every piece any arch
can contain (each stem, each block configuration at every input size it can see, each head).
"""
from __future__ import annotations

from itertools import product
from typing import Callable, Iterator

from torch import nn

from .blocks import StaticBottleneck, StaticHead, StaticStem
from .config import BlockSpec, ResNetConfig, StemSpec, block_plan, conv_out_size, downsamples, middle, stem_plan

Unit = tuple[str, Callable[[], nn.Module], tuple[int, ...]]  # (key, build module, input shape without batch)


def _stem(c: ResNetConfig, s: StemSpec, r: int) -> Unit:
    return (f"stem:{s.mid}-{s.out}-res{int(s.residual)}@{r}",
            lambda: StaticStem(c.in_channels, s.mid, s.out, s.residual), (c.in_channels, r, r))


def _block(b: BlockSpec, size: int) -> Unit:
    key = f"bottleneck:{b.cin}-{b.mid}-{b.cout}-s{b.stride}-ds{int(b.downsample)}@{size}"
    return key, lambda: StaticBottleneck(b.cin, b.mid, b.cout, b.stride, b.downsample), (b.cin, size, size)


def _head(c: ResNetConfig, features: int, size: int) -> Unit:
    return (f"head:{features}@{size}", lambda: StaticHead(features, c.num_classes, 0.0), (features, size, size))


def units(config: ResNetConfig, arch) -> list[Unit]:
    """The stem, every active block and the head of ``arch``, with their input shapes."""
    stem, plan = stem_plan(config, arch), block_plan(config, arch)
    size = conv_out_size(conv_out_size(arch["r"], 2), 2)  # stem conv 3x3/2, then max pool 3x3/2
    out = [_stem(config, stem, arch["r"])]
    for b in plan:
        out.append(_block(b, size))
        size = conv_out_size(size, b.stride)
    return out + [_head(config, plan[-1].cout if plan else stem.out, size)]


def all_units(config: ResNetConfig) -> Iterator[Unit]:
    """Every distinct unit of the space: stems (width pairs x residual), the first and a later block
    of each stage for every input width, output width and expand ratio, and the heads, at every r."""
    c, seen = config, set()
    residuals = (False, True) if len(c.depths) > 1 else (True,)  # the stem's residual conv off / on
    for r in c.resolutions:
        candidates = [_stem(c, StemSpec(m, o, res), r)
                      for m, o, res in product(c.stem_mids(), c.stem_outs(), residuals)]
        size, cins = conv_out_size(conv_out_size(r, 2), 2), c.stem_outs()
        for s in range(c.stages):
            out_size = conv_out_size(size, c.strides[s])
            for cout, e in product(c.stage_widths(s), c.expands):
                for cin in cins:
                    candidates.append(_block(BlockSpec(-1, cin, middle(cout, e), cout, c.strides[s],
                                                       downsamples(c, s, 0)), size))
                candidates.append(_block(BlockSpec(-1, cout, middle(cout, e), cout, 1, False), out_size))
            size, cins = out_size, c.stage_widths(s)
        candidates += [_head(c, f, size) for f in c.stage_widths(c.stages - 1)]
        for unit in candidates:
            if unit[0] not in seen:
                seen.add(unit[0])
                yield unit

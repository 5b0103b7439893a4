"""OFA MobileNetV3-style space for 1-D signals and 2-D images.

Dimensions (OFA's arch format): ``ks`` and ``e`` per block slot (stages x max depth),
``d`` per stage, ``r`` the input resolution. Block slots beyond a stage's depth are
inactive and canonicalise to 0.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from supernet.arch import Arch, Dimension, SearchSpace
from supernet.registry import register_space

from .mobilenet_blocks import ElasticMBConv, Head, StaticMBConv, Stem, make_divisible, se_channels


@dataclass(frozen=True)
class MobileNetConfig:
    """Everything needed to rebuild the supernet or any of its static subnets."""

    ndim: int = 2
    in_channels: int = 3
    num_classes: int = 1000
    stem_channels: int = 16
    stem_stride: int = 2
    first_channels: int = 16
    widths: tuple[int, ...] = (24, 40, 80, 112, 160)
    strides: tuple[int, ...] = (2, 2, 2, 1, 2)
    use_se: tuple[bool, ...] = (False, True, False, True, True)
    hswish: tuple[bool, ...] = (False, False, True, True, True)
    head_expand: int = 960
    head_features: int = 1280
    kernels: tuple[int, ...] = (3, 5, 7)
    expands: tuple[int, ...] = (3, 4, 6)
    depths: tuple[int, ...] = (2, 3, 4)
    resolutions: tuple[int, ...] = (128, 160, 192, 224)
    dropout: float = 0.1

    def __post_init__(self):
        n = len(self.widths)
        if not (len(self.strides) == len(self.use_se) == len(self.hswish) == n):
            raise ValueError("widths, strides, use_se and hswish need one entry per stage")

    @property
    def stages(self) -> int:
        return len(self.widths)

    @property
    def max_depth(self) -> int:
        return max(self.depths)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "MobileNetConfig":
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class BlockSpec:
    index: int
    cin: int
    cout: int
    stride: int
    kernel: int
    expand: int
    use_se: bool
    hswish: bool


class MobileNetSpace(SearchSpace):
    name = "mobilenet"

    def __init__(self, config: MobileNetConfig):
        self.config = config
        slots = config.stages * config.max_depth
        super().__init__([Dimension("ks", config.kernels, slots), Dimension("e", config.expands, slots),
                          Dimension("d", config.depths, config.stages), Dimension("r", config.resolutions)])

    def inactive(self, values) -> dict[str, set[int]]:
        depth, d = self.config.max_depth, values["d"]
        off = {s * depth + j for s in range(self.config.stages) for j in range(d[s], depth)}
        return {"ks": off, "e": off}

    def input_shape(self, arch: Arch) -> tuple[int, ...]:
        """Shape of one input (no batch axis) at the arch's resolution."""
        return (self.config.in_channels,) + (arch["r"],) * self.config.ndim

    def example_input(self, arch: Arch, batch: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """A standard-normal batch at the arch's resolution: ``(batch, C, *[r] * ndim)``."""
        return torch.randn((batch,) + self.input_shape(arch), generator=generator)

    def build_static(self, arch: Arch) -> nn.Module:
        """The arch's static network with fresh weights (for latency measurement)."""
        return build_static(self.config, arch)

    def latency_units(self, arch: Arch) -> list:
        from .mobilenet_latency import units
        return units(self.config, arch)

    def all_latency_units(self):
        from .mobilenet_latency import all_units
        return all_units(self.config)

    def cardinality(self) -> int:
        c = self.config
        per_block = len(c.kernels) * len(c.expands)
        return sum(per_block ** d for d in c.depths) ** c.stages * len(c.resolutions)


@lru_cache(maxsize=4096)
def block_plan(config: MobileNetConfig, arch: Arch) -> tuple[BlockSpec, ...]:
    """The active blocks of ``arch`` in order, with their channels, stride, kernel and expand."""
    specs, cin = [], config.first_channels
    for s, (width, stride) in enumerate(zip(config.widths, config.strides)):
        for j in range(arch["d"][s]):
            i = s * config.max_depth + j
            specs.append(BlockSpec(i, cin, width, stride if j == 0 else 1, arch["ks"][i], arch["e"][i],
                                   config.use_se[s], config.hswish[s]))
            cin = width
    return tuple(specs)


class MobileNetSupernet(nn.Module):
    """Weight-entangled MobileNetV3 supernet; ``forward(x, arch)`` runs the subnet ``arch``."""

    def __init__(self, config: MobileNetConfig):
        super().__init__()
        self.config, self.space = config, MobileNetSpace(config)
        c = config
        self.stem = Stem(c.ndim, c.in_channels, c.stem_channels, c.first_channels, c.stem_stride)
        blocks, cin = [], c.first_channels
        for s, width in enumerate(c.widths):
            for j in range(c.max_depth):
                blocks.append(ElasticMBConv(c.ndim, cin, width, c.strides[s] if j == 0 else 1, max(c.kernels),
                                            max(c.expands), c.use_se[s], c.hswish[s]))
                cin = width
        self.blocks = nn.ModuleList(blocks)
        self.head = Head(c.ndim, c.widths[-1], c.head_expand, c.head_features, c.num_classes, c.dropout)

    def prepare_input(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        """Resize a batch to the arch's resolution (linear / bilinear interpolation)."""
        return resize(x, arch["r"], self.config.ndim)

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        x = self.stem(x)  # (B, first, *S / stem_stride)
        for spec in block_plan(self.config, arch):
            x = self.blocks[spec.index](x, spec.kernel, spec.expand)
        return self.head(x)  # (B, num_classes)

    def extract(self, arch: Arch) -> nn.Module:
        """A standalone static network equal to ``self(x, arch)``, holding copies of the weights."""
        net = build_static(self.config, arch)
        state = {f"stem.{k}": v for k, v in self.stem.state_dict().items()}
        state.update({f"head.{k}": v for k, v in self.head.state_dict().items()})
        for pos, spec in enumerate(block_plan(self.config, arch)):
            sliced = self.blocks[spec.index].sliced_state(spec.kernel, spec.expand)
            state.update({f"blocks.{pos}.{k}": v.detach().clone() for k, v in sliced.items()})
        net.load_state_dict(state)
        return net

    def flops(self, arch: Arch) -> int:
        return count_macs(self.config, arch)

    def params(self, arch: Arch) -> int:
        return count_params(self.config, arch)


class StaticMobileNet(nn.Module):
    """A plain subnet: stem, a sequence of MBConv blocks, head. No elastic code."""

    def __init__(self, stem: nn.Module, blocks: list[nn.Module], head: nn.Module):
        super().__init__()
        self.stem, self.blocks, self.head = stem, nn.Sequential(*blocks), head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def build_static(config: MobileNetConfig, arch: Arch) -> StaticMobileNet:
    """The static subnet's structure, freshly initialised (load weights into it)."""
    c = config
    blocks = [StaticMBConv(c.ndim, b.cin, b.cout, b.stride, b.kernel, make_divisible(b.cin * b.expand),
                           b.use_se, b.hswish) for b in block_plan(config, arch)]
    return StaticMobileNet(Stem(c.ndim, c.in_channels, c.stem_channels, c.first_channels, c.stem_stride),
                           blocks, Head(c.ndim, c.widths[-1], c.head_expand, c.head_features, c.num_classes,
                                        c.dropout))


def resize(x: torch.Tensor, size: int, ndim: int) -> torch.Tensor:
    if tuple(x.shape[2:]) == (size,) * ndim:
        return x
    mode = "linear" if ndim == 1 else "bilinear"
    return F.interpolate(x, size=(size,) * ndim, mode=mode, align_corners=False)


# -- exact counting ---------------------------------------------------------------
def conv_out_size(size: int, stride: int) -> int:
    """Output length of a conv with odd kernel k, padding k // 2 and this stride."""
    return (size - 1) // stride + 1


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
    add((c.head_expand * c.head_features,) * 2)
    add((c.head_features * c.num_classes,) * 2, c.num_classes)
    return macs, params


def count_macs(config: MobileNetConfig, arch: Arch) -> int:
    return _tally(config, arch)[0]


def count_params(config: MobileNetConfig, arch: Arch) -> int:
    return _tally(config, arch)[1]


# -- variants -----------------------------------------------------------------------
VARIANTS = {
    # OFA MobileNetV3 (w1.0): ks {3,5,7}, e {3,4,6}, d {2,3,4}, 5 stages, ImageNet head.
    "ofa": MobileNetConfig(),
    # MNIST-1D: 40-sample signals, 4 stages, downsampling 40 -> 20 -> 10 -> 5.
    "mnist1d": MobileNetConfig(ndim=1, in_channels=1, num_classes=10, stem_channels=16, stem_stride=1,
                               first_channels=16, widths=(24, 32, 48, 64), strides=(2, 2, 2, 1),
                               use_se=(False, True, True, True), hswish=(False, False, True, True),
                               head_expand=192, head_features=256, resolutions=(32, 36, 40), dropout=0.1),
    # 28 px images (MNIST, upsampled digits).
    "mnist": MobileNetConfig(ndim=2, in_channels=1, num_classes=10, stem_channels=16, stem_stride=1,
                             first_channels=16, widths=(24, 40, 64), strides=(2, 2, 2),
                             use_se=(False, True, True), hswish=(False, True, True),
                             head_expand=192, head_features=256, resolutions=(20, 24, 28), dropout=0.1),
    # Tiny variants for tests: one 1-D and one 2-D, two stages, small widths.
    "tiny": MobileNetConfig(ndim=1, in_channels=1, num_classes=10, stem_channels=8, stem_stride=1,
                            first_channels=8, widths=(8, 16), strides=(2, 1), use_se=(False, True),
                            hswish=(False, True), head_expand=32, head_features=32, kernels=(3, 5),
                            expands=(2, 3), depths=(1, 2), resolutions=(16, 20), dropout=0.0),
    "tiny2d": MobileNetConfig(ndim=2, in_channels=3, num_classes=5, stem_channels=8, stem_stride=2,
                              first_channels=8, widths=(8, 16), strides=(2, 1), use_se=(True, False),
                              hswish=(True, False), head_expand=32, head_features=32, kernels=(3, 5),
                              expands=(2, 3), depths=(1, 2), resolutions=(12, 16), dropout=0.0),
}


def build_supernet(config: MobileNetConfig) -> MobileNetSupernet:
    return MobileNetSupernet(config)


register_space("mobilenet", VARIANTS, config_cls=MobileNetConfig, build_space=MobileNetSpace,
               build_supernet=build_supernet,
               build_static=build_static, default_variant="ofa", task="classification")

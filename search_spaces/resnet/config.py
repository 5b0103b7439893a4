"""The resnet space's config (everything needed to rebuild the supernet or a subnet) and its block plan.

Dimensions (OFA's ``OFAResNets`` arch format, ``set_active_subnet(d=, e=, w=)``):

- ``d``: ``stages + 1`` depths. ``d[0]`` is the input stem: its residual 3x3 conv runs only when
  ``d[0] == max(depths)`` (OFA skips it otherwise), so a canonical arch holds ``min(depths)`` or
  ``max(depths)`` there. ``d[1 + s]``: stage ``s`` runs ``base_depths[s] + d[1 + s]`` blocks.
- ``e``: one expand ratio per block slot (``sum(base_depths) + stages * max(depths)`` slots);
  a block's middle width is ``make_divisible(round(out * e), 8)`` of its *active* output width.
  Slots beyond a stage's depth are inactive (None in a canonical arch).
- ``w``: ``stages + 2`` width-multiplier *indices* into ``width_mults``: ``w[0]`` the stem's first two
  convs, ``w[1]`` its third conv, ``w[2 + s]`` every block of stage ``s``.
- ``r``: the input resolution.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

from supernet.core.arch import Arch


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of ``divisor`` without dropping below 90% (OFA's / MobileNet's rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


@dataclass(frozen=True)
class ResNetConfig:
    """Everything needed to rebuild the supernet or any static subnet (defaults: OFA's ``ofa_resnet50``)."""

    in_channels: int = 3
    num_classes: int = 1000
    stem_width: int = 64
    widths: tuple[int, ...] = (256, 512, 1024, 2048)
    base_depths: tuple[int, ...] = (2, 2, 4, 2)
    strides: tuple[int, ...] = (1, 2, 2, 2)
    depths: tuple[int, ...] = (0, 1, 2)
    expands: tuple[float, ...] = (0.2, 0.25, 0.35)
    width_mults: tuple[float, ...] = (0.65, 0.8, 1.0)
    resolutions: tuple[int, ...] = (128, 160, 192, 224)
    dropout: float = 0.0

    def __post_init__(self):
        if not (len(self.widths) == len(self.base_depths) == len(self.strides)):
            raise ValueError("widths, base_depths and strides need one entry per stage")
        for name in ("depths", "expands", "width_mults"):
            values = getattr(self, name)
            if list(values) != sorted(set(values)):
                raise ValueError(f"{name} must be distinct and ascending (OFA sorts them), got {values}")

    @property
    def stages(self) -> int:
        return len(self.widths)

    @property
    def max_depth(self) -> int:
        return max(self.depths)

    @property
    def stage_slots(self) -> tuple[int, ...]:
        """Block slots per stage: ``base_depths[s] + max(depths)``."""
        return tuple(b + self.max_depth for b in self.base_depths)

    @property
    def slots(self) -> int:
        return sum(self.stage_slots)

    def stem_outs(self) -> tuple[int, ...]:
        """Output width of the stem's third conv per width index: ``make_divisible(stem_width * w)``."""
        return tuple(make_divisible(self.stem_width * w) for w in self.width_mults)

    def stem_mids(self) -> tuple[int, ...]:
        """Width of the stem's first two convs per width index: ``make_divisible(stem_out // 2)``."""
        return tuple(make_divisible(c // 2) for c in self.stem_outs())

    def stage_widths(self, stage: int) -> tuple[int, ...]:
        """Output width of the blocks of ``stage`` per width index: ``make_divisible(widths[s] * w)``."""
        return tuple(make_divisible(self.widths[stage] * w) for w in self.width_mults)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "ResNetConfig":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names})


def middle(out: int, expand: float) -> int:
    """A bottleneck's middle width: ``make_divisible(round(out * expand), 8)`` (OFA's rule)."""
    return make_divisible(round(out * expand))


@dataclass(frozen=True)
class StemSpec:
    mid: int
    out: int
    residual: bool


@dataclass(frozen=True)
class BlockSpec:
    index: int  # the supernet's block slot
    cin: int
    mid: int
    cout: int
    stride: int
    downsample: bool  # avg-pool + 1x1 conv + BN shortcut (else identity)


def downsamples(config: ResNetConfig, stage: int, j: int) -> bool:
    """OFA's rule, on the block's channel *lists*: identity shortcut iff stride 1 and same lists."""
    if j > 0:
        return False
    cins = config.stem_outs() if stage == 0 else config.stage_widths(stage - 1)
    return config.strides[stage] != 1 or cins != config.stage_widths(stage)


def stem_plan(config: ResNetConfig, arch: Arch) -> StemSpec:
    w = arch["w"]
    return StemSpec(config.stem_mids()[w[0]], config.stem_outs()[w[1]], arch["d"][0] == config.max_depth)


@lru_cache(maxsize=4096)
def block_plan(config: ResNetConfig, arch: Arch) -> tuple[BlockSpec, ...]:
    """The active blocks of ``arch`` in order, with their channels, stride and shortcut."""
    specs, cin, start = [], stem_plan(config, arch).out, 0
    for s, slots in enumerate(config.stage_slots):
        cout = config.stage_widths(s)[arch["w"][2 + s]]
        for j in range(config.base_depths[s] + arch["d"][1 + s]):
            specs.append(BlockSpec(start + j, cin, middle(cout, arch["e"][start + j]), cout,
                                   config.strides[s] if j == 0 else 1, downsamples(config, s, j)))
            cin = cout
        start += slots
    return tuple(specs)


def conv_out_size(size: int, stride: int) -> int:
    """Output side of a conv with odd kernel k, padding k // 2 and this stride (also of the 3x3/2 max pool
    with padding 1 and of the ceil-mode ``stride x stride`` average pool)."""
    return (size - 1) // stride + 1

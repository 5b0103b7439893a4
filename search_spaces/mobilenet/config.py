"""The mobilenet space's config (everything needed to rebuild the supernet or a subnet) and its block plan.

Dimensions (OFA's arch format): ``ks`` and ``e`` per block slot (searched stages x max depth,
then one slot per fixed stage), ``d`` per searched stage, ``r`` the input resolution. Block
slots beyond a stage's depth are inactive and canonicalise to 0.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

from supernet.core.arch import Arch


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
    # OFA's KERNEL_TRANSFORM_MODE=1: a smaller depthwise kernel is a learned ``k^2 x k^2`` matrix times
    # the centre of the next larger one (7 -> 5 -> 3), not the plain centre (2-D only)
    kernel_transform: bool = False
    relu6: bool = False  # ProxylessNAS: ReLU6 everywhere (stem, blocks, head) instead of ReLU / h-swish
    bn_eps: float = 1e-5  # every batch norm's epsilon (ProxylessNAS: 1e-3)
    fixed_stages: int = 0  # the last N stages hold one block each: kernel and expand searched, depth not

    def __post_init__(self):
        n = len(self.widths)
        if not (len(self.strides) == len(self.use_se) == len(self.hswish) == n):
            raise ValueError("widths, strides, use_se and hswish need one entry per stage")
        if self.kernel_transform and self.ndim != 2:
            raise ValueError("kernel_transform needs 2-D images (ndim=2), as OFA's DynamicSeparableConv2d")
        if self.relu6 and any(self.hswish):
            raise ValueError("relu6 puts ReLU6 everywhere; set every hswish entry to False")
        if not 0 <= self.fixed_stages < n:
            raise ValueError(f"fixed_stages must be in [0, {n}), got {self.fixed_stages}")

    @property
    def stages(self) -> int:
        return len(self.widths)

    @property
    def max_depth(self) -> int:
        return max(self.depths)

    @property
    def searched_stages(self) -> int:
        """Stages whose depth is searched (the ``d`` dimension's length)."""
        return self.stages - self.fixed_stages

    @property
    def slots(self) -> int:
        """Block slots (the ``ks`` / ``e`` dimensions' length): max depth per searched stage, one per fixed."""
        return self.searched_stages * self.max_depth + self.fixed_stages

    def stage_slots(self, stage: int) -> range:
        """The slot indices of ``stage``'s blocks, in order."""
        if stage < self.searched_stages:
            return range(stage * self.max_depth, (stage + 1) * self.max_depth)
        start = self.searched_stages * self.max_depth + stage - self.searched_stages
        return range(start, start + 1)

    def depth_of(self, arch: Arch, stage: int) -> int:
        return arch["d"][stage] if stage < self.searched_stages else 1

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


@lru_cache(maxsize=4096)
def block_plan(config: MobileNetConfig, arch: Arch) -> tuple[BlockSpec, ...]:
    """The active blocks of ``arch`` in order, with their channels, stride, kernel and expand."""
    specs, cin = [], config.first_channels
    for s, (width, stride) in enumerate(zip(config.widths, config.strides)):
        for j, i in enumerate(config.stage_slots(s)[:config.depth_of(arch, s)]):
            specs.append(BlockSpec(i, cin, width, stride if j == 0 else 1, arch["ks"][i], arch["e"][i],
                                   config.use_se[s], config.hswish[s]))
            cin = width
    return tuple(specs)


# -- exact counting ---------------------------------------------------------------
def conv_out_size(size: int, stride: int) -> int:
    """Output length of a conv with odd kernel k, padding k // 2 and this stride."""
    return (size - 1) // stride + 1

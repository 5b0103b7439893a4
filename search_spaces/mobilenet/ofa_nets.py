"""OFA's published MobileNet-family supernets as ``mobilenet`` configs, and OFA's arch format.

Each config rebuilds the network of OFA's own constructor exactly (``ofa`` package,
``OFAMobileNetV3`` / ``OFAProxylessNASNets`` with ``ks_list=[3, 5, 7]``, ``expand_ratio_list=[3, 4, 6]``,
``depth_list=[2, 3, 4]`` and ``DynamicSeparableConv2d.KERNEL_TRANSFORM_MODE = 1``); widths follow
OFA's rule ``make_divisible(base * width_mult, 8)``. The resolutions are those OFA trained these
supernets on: 128 to 224 px in steps of 4.
"""
from __future__ import annotations

from dataclasses import replace

from supernet.core.arch import Arch
from supernet.core.errors import SupernetError

from .blocks import make_divisible
from .config import MobileNetConfig

OFA_RESOLUTIONS = tuple(range(128, 225, 4))  # OFA's elastic resolution: 128..224 px, step 4
_CHOICES = dict(kernels=(3, 5, 7), expands=(3, 4, 6), depths=(2, 3, 4), kernel_transform=True,
                resolutions=OFA_RESOLUTIONS, dropout=0.1)


def ofa_mbv3(width_mult: float) -> MobileNetConfig:
    """``OFAMobileNetV3(width_mult=...)``: stem 16, stages 24/40/80/112/160, head 960 -> 1280, scaled."""
    w = lambda base: make_divisible(base * width_mult, 8)  # noqa: E731
    return MobileNetConfig(stem_channels=w(16), first_channels=w(16), widths=tuple(w(b) for b in (24, 40, 80, 112, 160)),
                           head_expand=w(960), head_features=w(1280), **_CHOICES)


def ofa_proxyless(width_mult: float) -> MobileNetConfig:
    """``OFAProxylessNASNets(width_mult=...)``: ReLU6, no squeeze-excite, BN eps 1e-3, stem 32 -> 16,
    stages 24/40/80/96/192 (strides 2, 2, 2, 1, 2) then one 320-channel block, a 1280-channel 1x1
    conv with BN before the pool and no feature-mix layer; scaled."""
    w = lambda base: make_divisible(base * width_mult, 8)  # noqa: E731
    return MobileNetConfig(stem_channels=w(32), first_channels=w(16), widths=tuple(w(b) for b in (24, 40, 80, 96, 192, 320)),
                           strides=(2, 2, 2, 1, 2, 1), use_se=(False,) * 6, hswish=(False,) * 6, head_expand=w(1280),
                           head_features=0, relu6=True, bn_eps=1e-3, fixed_stages=1, **_CHOICES)


# OFA's net name -> config (the names of ``ofa.model_zoo.ofa_net`` and of its checkpoint files)
OFA_NETS = {
    "ofa_mbv3_d234_e346_k357_w1.0": ofa_mbv3(1.0),
    "ofa_mbv3_d234_e346_k357_w1.2": ofa_mbv3(1.2),
    "ofa_proxyless_d234_e346_k357_w1.3": ofa_proxyless(1.3),
}


def with_resolutions(config: MobileNetConfig, resolutions) -> MobileNetConfig:
    """``config`` holding the resolutions ``resolutions`` (each one OFA's nets support)."""
    bad = sorted(set(resolutions) - set(OFA_RESOLUTIONS))
    if bad or not resolutions:
        raise SupernetError(f"resolution {bad[0] if bad else 'list'} is not one OFA's supernets support: "
                            f"choose among 128..224 px in steps of 4")
    return replace(config, resolutions=tuple(sorted(set(resolutions))))


def to_ofa_arch(config: MobileNetConfig, arch: Arch) -> dict:
    """``arch`` in OFA's ``set_active_subnet(ks=, e=, d=)`` format: one ks / e per elastic block (our
    inactive 0 becomes the smallest choice, which OFA ignores there), one d per block group."""
    ks = [k or min(config.kernels) for k in arch["ks"]]
    e = [x or min(config.expands) for x in arch["e"]]
    return {"ks": ks, "e": e, "d": list(arch["d"]) + [1] * config.fixed_stages, "r": arch["r"]}

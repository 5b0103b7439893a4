"""``mobilenet``: OFA MobileNetV3-style space for 1-D signals and 2-D images.

Dimensions (OFA's arch format): ``ks`` and ``e`` per block slot (stages x max depth),
``d`` per stage, ``r`` the input resolution. OFA's published supernets are variants named as OFA names
them (:mod:`.ofa_nets`), and ``supernet import ofa`` reads their files (:mod:`.ofa_import`). The space reads data as it is stored: a signal
``(L,)`` or ``(C, L)``, an image ``(H, W)`` or ``(C, H, W)``; the channels and classes come from
the data (:func:`fit_data`), the variant from its shape and size (:func:`choose_variant`).
"""
from __future__ import annotations

from dataclasses import replace
from functools import partial

from supernet.core.data_info import DataInfo
from supernet.core.errors import SupernetError
from supernet.core.registry import register_importer, register_space

from .config import MobileNetConfig
from .model import MobileNetSupernet
from .ofa_import import import_ofa_mobilenet
from .ofa_nets import OFA_NETS
from .space import MobileNetSpace
from .static import build_static

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
    # every option OFA's nets use, small: kernel transforms (3 -> 5 -> 7), ReLU6, no feature mix,
    # BN eps 1e-3 and a last one-block stage (as ProxylessNAS)
    "tiny_proxyless": MobileNetConfig(ndim=2, in_channels=3, num_classes=5, stem_channels=16, stem_stride=2,
                                      first_channels=8, widths=(8, 16, 24), strides=(2, 1, 1),
                                      use_se=(False,) * 3, hswish=(False,) * 3, head_expand=32,
                                      head_features=0, kernels=(3, 5, 7), expands=(2, 3), depths=(1, 2),
                                      resolutions=(12, 16), dropout=0.0, kernel_transform=True, relu6=True,
                                      bn_eps=1e-3, fixed_stages=1),
    # OFA's published supernets, exactly (``supernet import ofa`` loads their weights)
    **OFA_NETS,
}




def build_supernet(config: MobileNetConfig) -> MobileNetSupernet:
    return MobileNetSupernet(config)


def spatial_axes(shape: tuple[int, ...]) -> int:
    """1 for a signal (``(L,)``, or ``(C, L)`` with at most 4 channels), 2 for an image."""
    return 1 if len(shape) == 1 or (len(shape) == 2 and shape[0] <= 4 < shape[1]) else 2


def choose_variant(info: DataInfo) -> str:
    """``mnist1d`` for signals, ``mnist`` for images up to 64 px, ``ofa`` for larger ones."""
    if spatial_axes(info.sample_shape) == 1:
        return "mnist1d"
    return "mnist" if info.sample_shape[-1] <= 64 else "ofa"


def fit_data(config: MobileNetConfig, info: DataInfo, options=None) -> MobileNetConfig:
    """The variant with the data's channels (a sample without a channel axis has one) and classes."""
    shape, n = tuple(info.sample_shape), config.ndim
    if len(shape) in (2, 3) and shape[-1] <= 4 < shape[0]:
        order = "(0, 3, 1, 2)" if len(shape) == 3 else "(0, 2, 1)"
        raise SupernetError(f"{info.name!r}: inputs of shape {shape} look channels-last; the data must be "
                            f"channels-first ((N, C, H, W) or (N, C, L)): save x.transpose{order} instead")
    if len(shape) not in (n, n + 1) or spatial_axes(shape) != n:
        kind = "1-D signals (L,) or (C, L)" if n == 1 else "2-D images (H, W) or (C, H, W)"
        raise SupernetError(f"this mobilenet variant takes {kind}; the data {info.name!r} has inputs of shape "
                            f"{shape}; choose a {spatial_axes(shape) if len(shape) <= 3 else n}-D --variant "
                            "(see `supernet spaces`)")
    channels = 1 if len(shape) == n else shape[0]
    return replace(config, in_channels=channels, num_classes=info.num_classes or config.num_classes)


register_space("mobilenet", VARIANTS, config_cls=MobileNetConfig, build_space=MobileNetSpace,
               build_supernet=build_supernet, build_static=build_static, default_variant="ofa",
               task="classification", choose_variant=choose_variant, fit_data=fit_data)
for _net in OFA_NETS:
    register_importer("ofa", _net, partial(import_ofa_mobilenet, _net))

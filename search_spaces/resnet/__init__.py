"""``resnet``: OFA's ``OFAResNets`` space (ResNet-50 layout) for 2-D images.

Dimensions (OFA's arch format, ``set_active_subnet(d=, e=, w=)``): ``d`` the stem's and each
stage's extra depth, ``e`` the expand ratio per block slot, ``w`` the width-multiplier index of
the stem's two parts and of each stage, ``r`` the input resolution (see :mod:`.config`). The
``ofa`` variant is ``ofa_resnet50`` (d {0,1,2}, e {0.2,0.25,0.35}, w {0.65,0.8,1.0}); its
published weights come in through :mod:`.ofa_import`. The channels and classes come from the data
(:func:`fit_data`).
"""
from __future__ import annotations

from dataclasses import replace

from supernet.core.data_info import DataInfo
from supernet.core.errors import SupernetError
from supernet.core import registry
from supernet.core.registry import register_space

from .config import ResNetConfig
from .model import ResNetSupernet
from .ofa_import import NET as OFA_NET, OFA_RESNET50, import_ofa_file
from .space import ResNetSpace
from .static import build_static

VARIANTS = {
    # OFA's ofa_resnet50: ResNet-50 stages (256, 512, 1024, 2048) x (2, 2, 4, 2) + d blocks, ImageNet head,
    # the resolutions OFA trained on (128..224 px in steps of 4).
    "ofa": OFA_RESNET50,
    # 28-32 px images (MNIST, small photos): two stages, narrow widths.
    "small": ResNetConfig(num_classes=10, stem_width=32, widths=(64, 128), base_depths=(1, 1), strides=(1, 2),
                          resolutions=(24, 28, 32)),
    # Tiny variant for the shared tests: two stages, two depths, small widths.
    "tiny": ResNetConfig(num_classes=5, stem_width=16, widths=(32, 48), base_depths=(1, 1), strides=(1, 2),
                         depths=(0, 1), resolutions=(16, 20)),
}


def build_supernet(config: ResNetConfig) -> ResNetSupernet:
    return ResNetSupernet(config)


def choose_variant(info: DataInfo) -> str:
    """``small`` for images up to 64 px, ``ofa`` for larger ones."""
    return "small" if info.sample_shape[-1] <= 64 else "ofa"


def fit_data(config: ResNetConfig, info: DataInfo, options=None) -> ResNetConfig:
    """The variant with the data's channels (an image without a channel axis has one) and classes."""
    shape = tuple(info.sample_shape)
    if len(shape) == 3 and shape[-1] <= 4 < shape[0]:
        raise SupernetError(f"{info.name!r}: inputs of shape {shape} look channels-last; the data must be "
                            "channels-first ((N, C, H, W)): save x.transpose(0, 3, 1, 2) instead")
    if len(shape) not in (2, 3):
        raise SupernetError(f"the resnet space takes 2-D images (H, W) or (C, H, W); the data {info.name!r} has "
                            f"inputs of shape {shape} (see `supernet spaces`)")
    channels = 1 if len(shape) == 2 else shape[0]
    return replace(config, in_channels=channels, num_classes=info.num_classes or config.num_classes)


register_space("resnet", VARIANTS, config_cls=ResNetConfig, build_space=ResNetSpace,
               build_supernet=build_supernet, build_static=build_static, default_variant="ofa",
               task="classification", choose_variant=choose_variant, fit_data=fit_data)
if hasattr(registry, "register_importer"):  # `supernet import ofa --net ofa_resnet50` where the engine has it
    registry.register_importer("ofa", OFA_NET, import_ofa_file)

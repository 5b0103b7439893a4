"""OFA's own package (``ofa``, installed with ``pip install --no-deps ofa``) for checks against it.

``ofa`` imports torchvision's transforms at import time; this project never depends on torchvision
(there is no usable CPU build here), so :func:`import_ofa` first puts an import-only stand-in for the
few torchvision names ``ofa`` touches into ``sys.modules``: nothing of torchvision ever runs. Only
tests and benchmarks import this module; the engine never imports ``ofa``.
"""
from __future__ import annotations

import sys
import types

OFA_VERSION = "0.1.0.post202307202001"  # the version the Makefile installs (--no-deps)


def _stand_in() -> None:
    """Register ``torchvision``, ``torchvision.transforms`` (+ ``functional``) stand-ins unless present."""
    names = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional",
             "torchvision.datasets", "torchvision.transforms.transforms")
    vision, transforms, functional, datasets, transforms_mod = (types.ModuleType(n) for n in names)
    stub = type("RandomResizedCrop", (), {"__init__": lambda self, *a, **k: None})
    transforms.RandomResizedCrop = transforms_mod.RandomResizedCrop = stub
    transforms.functional, transforms.transforms, vision.transforms, vision.datasets = (
        functional, transforms_mod, transforms, datasets)
    for module in (vision, transforms, functional, datasets, transforms_mod):
        sys.modules.setdefault(module.__name__, module)


def import_ofa():
    """The ``ofa`` package's elastic networks module (``OFAMobileNetV3``, ``OFAProxylessNASNets``, ...).

    Raises ImportError with the install line when the package is missing."""
    _stand_in()
    try:
        from ofa.imagenet_classification.elastic_nn import networks
        from ofa.imagenet_classification.elastic_nn.modules.dynamic_op import DynamicSeparableConv2d
    except ImportError as exc:
        raise ImportError(f"OFA's package is not installed ({exc}): pip install --no-deps ofa=={OFA_VERSION}") from exc
    DynamicSeparableConv2d.KERNEL_TRANSFORM_MODE = 1  # how OFA's published supernets are built and loaded
    return networks

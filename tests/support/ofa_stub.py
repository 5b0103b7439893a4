"""Import OFA's package (``pip install --no-deps ofa``, a test-only dependency) with an import-only
stand-in for the torchvision modules it imports at import time: nothing of torchvision runs, and the
project never depends on it. ``import_ofa()`` returns ``None`` when OFA's package is not installed."""
from __future__ import annotations

import importlib
import sys
import types


def install_torchvision_stub() -> None:
    """Put empty ``torchvision``, ``torchvision.transforms`` (with a ``RandomResizedCrop`` class OFA
    subclasses) and ``torchvision.transforms.functional`` modules into ``sys.modules`` unless real ones
    are already imported."""
    vision, transforms, functional = (types.ModuleType(n) for n in
                                      ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"))
    transforms.RandomResizedCrop = type("RandomResizedCrop", (), {"__init__": lambda self, *a, **k: None})
    transforms.functional, vision.transforms = functional, transforms
    for module in (vision, transforms, functional):
        sys.modules.setdefault(module.__name__, module)


def import_ofa(module: str = "ofa.imagenet_classification.elastic_nn.networks"):
    """OFA's ``module`` (default: the elastic networks ``OFAMobileNetV3``, ``OFAProxylessNASNets``,
    ``OFAResNets``), or None when the package is missing."""
    install_torchvision_stub()
    try:
        return importlib.import_module(module)
    except ImportError:
        return None

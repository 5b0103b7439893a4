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


def _stand_in() -> list[str]:
    """Register ``torchvision``, ``torchvision.transforms`` (+ ``functional``) stand-ins where absent;
    returns the names registered."""
    names = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional",
             "torchvision.datasets", "torchvision.transforms.transforms")
    vision, transforms, functional, datasets, transforms_mod = (types.ModuleType(n) for n in names)
    stub = type("RandomResizedCrop", (), {"__init__": lambda self, *a, **k: None})
    transforms.RandomResizedCrop = transforms_mod.RandomResizedCrop = stub
    transforms.functional, transforms.transforms, vision.transforms, vision.datasets = (
        functional, transforms_mod, transforms, datasets)
    added = [m.__name__ for m in (vision, transforms, functional, datasets, transforms_mod) if m.__name__ not in sys.modules]
    for module in (vision, transforms, functional, datasets, transforms_mod):
        sys.modules.setdefault(module.__name__, module)
    return added


def import_ofa():
    """The ``ofa`` package's elastic networks module (``OFAMobileNetV3``, ``OFAProxylessNASNets``, ...).

    Raises ImportError with the install line when the package is missing. The stand-ins leave
    ``sys.modules`` once ``ofa`` is imported, so nothing else (transformers' ``find_spec`` checks) sees a
    torchvision without a spec."""
    added = _stand_in()
    try:
        from ofa.imagenet_classification.elastic_nn import networks
        from ofa.imagenet_classification.elastic_nn.modules.dynamic_op import DynamicSeparableConv2d
    except ImportError as exc:
        raise ImportError(f"OFA's package is not installed ({exc}): pip install --no-deps ofa=={OFA_VERSION}") from exc
    finally:
        for name in added:
            sys.modules.pop(name, None)
    DynamicSeparableConv2d.KERNEL_TRANSFORM_MODE = 1  # how OFA's published supernets are built and loaded
    return networks


CHOICES = dict(ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4])


def build_ofa_net(net: str, seed: int = 0, kernel_transform: bool = True):
    """OFA's own supernet ``net`` (by its published name) with random weights that make every part
    count: OFA's init, then BN affine and running statistics, the kernel transformation matrices
    (identity at init) and the classifier perturbed from ``seed``, so that logits are O(1). Eval mode.
    ``kernel_transform=False``: built with ``KERNEL_TRANSFORM_MODE = None`` (plain centre kernels)."""
    import torch
    networks = import_ofa()
    from ofa.imagenet_classification.elastic_nn.modules.dynamic_op import DynamicSeparableConv2d
    width = float(net.rsplit("_w", 1)[1])
    cls = networks.OFAProxylessNASNets if net.startswith("ofa_proxyless") else networks.OFAMobileNetV3
    torch.manual_seed(seed)
    DynamicSeparableConv2d.KERNEL_TRANSFORM_MODE = 1 if kernel_transform else None  # read when built and run
    model = cls(n_classes=1000, dropout_rate=0.1, width_mult=width, **CHOICES)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if key.endswith("_matrix"):
                t.add_(torch.randn(t.shape, generator=g) * 0.1)
            elif key.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif key.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif key.endswith("bn.weight"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif key.endswith("bn.bias"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif key.startswith("classifier.") and key.endswith("weight"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.5)
    return model.eval()


def save_ofa_checkpoint(model, path) -> None:
    """``model``'s weights as OFA's published checkpoint files hold them: ``{"state_dict": ...}``."""
    import torch
    torch.save({"state_dict": model.state_dict()}, path)


def set_ofa_arch(model, ofa_arch: dict) -> None:
    """``set_active_subnet`` with an arch in OFA's format (``to_ofa_arch``)."""
    model.set_active_subnet(ks=ofa_arch["ks"], e=ofa_arch["e"], d=ofa_arch["d"])

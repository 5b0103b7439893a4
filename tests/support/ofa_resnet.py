"""OFA's own ``OFAResNets`` (``ofa_resnet50``) beside our imported ``resnet`` supernet, on the same
random weights: shared by the unit test and ``benchmarks/check_ofa_resnet.py``."""
from __future__ import annotations

import numpy as np
import torch

from .ofa_stub import import_ofa

RESOLUTIONS = (128, 160, 192, 224)


def ofa_networks():
    """OFA's elastic networks module (None when OFA's package is not installed)."""
    try:
        return import_ofa()
    except ImportError:
        return None


def random_ofa_resnet50(seed: int = 0):
    """OFA's ``ofa_resnet50`` (as ``ofa.model_zoo.ofa_net`` builds it) with seeded random weights, BN affine
    pairs and running statistics included (so that every slice matters), in eval mode."""
    torch.manual_seed(seed)
    net = ofa_networks().OFAResNets(dropout_rate=0, depth_list=[0, 1, 2], expand_ratio_list=[0.2, 0.25, 0.35],
                                    width_mult_list=[0.65, 0.8, 1.0])
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("conv.weight"):  # He-normal: activations stay O(1) through 50+ layers
                t.copy_(torch.randn(t.shape, generator=g) * (2.0 / t[0].numel()) ** 0.5)
            elif name.endswith("bn.weight"):
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.5)
            elif name.endswith("bn.bias") or name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("num_batches_tracked"):
                t.fill_(int(torch.randint(1, 1000, (), generator=g)))
    return net.eval()


def ofa_checkpoint(net) -> dict:
    """The file layout OFA publishes: ``{'state_dict': ...}``."""
    return {"state_dict": {k: v.clone() for k, v in net.state_dict().items()}}


def ofa_arch(arch) -> dict:
    """Our arch as ``set_active_subnet`` keywords (inactive expand slots stay None: OFA skips them)."""
    return {"d": list(arch["d"]), "e": list(arch["e"]), "w": list(arch["w"])}


def archs(space, n_random: int, seed: int = 0) -> list:
    """Largest, smallest and ``n_random`` seeded random archs, at the resolution each arch names."""
    rng = np.random.default_rng(seed)
    return [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(n_random)]


def image(r: int, seed: int = 0) -> torch.Tensor:
    return torch.randn((1, 3, r, r), generator=torch.Generator().manual_seed(seed))


def ofa_logits(net, arch, x: torch.Tensor) -> torch.Tensor:
    """OFA's ``set_active_subnet`` + forward (eval mode, no grad)."""
    net.set_active_subnet(**ofa_arch(arch))
    with torch.no_grad():
        return net(x)


def ofa_static(net, arch):
    """OFA's ``get_active_subnet(preserve_weight=True)`` of ``arch`` (eval mode)."""
    net.set_active_subnet(**ofa_arch(arch))
    return net.get_active_subnet(preserve_weight=True).eval()

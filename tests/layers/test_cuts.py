import numpy as np
import pytest
import torch
from torch import nn

from supernet.core.registry import build_supernet, space_config
from supernet.layers.cuts import cut_plan, cut_together
from supernet.layers.elastic import ElasticBatchNorm, ElasticConv


def _node_counts(y: torch.Tensor) -> dict[str, int]:
    counts, seen, stack = {}, set(), [y.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        counts[type(fn).__name__] = counts.get(type(fn).__name__, 0) + 1
        stack.extend(next_fn for next_fn, _ in fn.next_functions)
    return counts


def _per_layer(monkeypatch):
    """Make the mobilenet supernet cut each layer's tensors on its own (the path before cut_together)."""
    from search_spaces.mobilenet import model
    monkeypatch.setattr(model, "cut_together", lambda plans: [None] * len(plans))


def _run(supernet, arch, x, seed=0):
    supernet.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    y = supernet(x, arch)
    y.square().mean().backward()
    grads = {k: p.grad.clone() for k, p in supernet.named_parameters() if p.grad is not None}
    stats = {k: b.clone() for k, b in supernet.named_buffers()}
    return y.detach(), grads, stats


@pytest.mark.parametrize("variant", ["tiny", "tiny2d", "mnist1d"])
def test_one_joint_cut_gives_the_per_layer_values_and_gradients_bit_for_bit(variant, monkeypatch):
    cfg = space_config("mobilenet", variant, num_classes=10)
    torch.manual_seed(0)
    joint, per_layer = build_supernet("mobilenet", cfg).train(), build_supernet("mobilenet", cfg).train()
    per_layer.load_state_dict(joint.state_dict())
    rng = np.random.default_rng(0)
    for arch in [joint.space.smallest(), joint.space.largest()] + [joint.space.sample(rng) for _ in range(3)]:
        x = torch.randn((4, cfg.in_channels) + (arch["r"],) * cfg.ndim)
        a = _run(joint, arch, x)
        with monkeypatch.context() as m:
            _per_layer(m)
            b = _run(per_layer, arch, x)
        assert torch.equal(a[0], b[0])
        assert a[1].keys() == b[1].keys() and all(torch.equal(a[1][k], b[1][k]) for k in a[1])
        assert all(torch.equal(a[2][k], b[2][k]) for k in a[2])  # running statistics too


def test_a_small_subnet_has_one_cut_node_instead_of_one_per_parameter(monkeypatch):
    cfg = space_config("mobilenet", "mnist1d", num_classes=10)
    supernet = build_supernet("mobilenet", cfg).train()
    x = torch.randn(2, 1, 32)
    joint = _node_counts(supernet(x, supernet.space.smallest()))
    with monkeypatch.context() as m:
        _per_layer(m)
        per_layer = _node_counts(supernet(x, supernet.space.smallest()))
    assert joint.get("_CutTogetherBackward") == 1
    assert "SliceBackward0" not in joint and "AsStridedBackward0" not in joint
    assert per_layer.get("SliceBackward0", 0) + per_layer.get("AsStridedBackward0", 0) > 50
    with torch.no_grad():  # evaluation cuts plain views: no autograd node to save
        assert supernet(x, supernet.space.smallest()).grad_fn is None


class _Pair(nn.Module):
    """A module with ``cuts``: a conv and a batch norm, cut to ``width`` channels."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = ElasticConv(1, 6, 8, 5, bias=True), ElasticBatchNorm(1, 8)

    def cuts(self, width: int):
        return {"conv": self.conv.cuts(6, width, 3), "bn": self.bn.cuts(width)}

    def forward(self, x, width, tensors=None):
        t = tensors or {}
        return self.bn(self.conv(x, width, 3, tensors=t.get("conv")), t.get("bn"))


def _joint_and_plain(module: _Pair, x: torch.Tensor, width: int):
    out = []
    for tensors in (cut_together([cut_plan(module, width)])[0], None):
        module.zero_grad(set_to_none=True)
        y = module(x, width, tensors)
        y.square().sum().backward()
        out.append((y.detach(), [None if p.grad is None else p.grad.clone() for p in module.parameters()]))
    return out


def _same(a, b) -> bool:
    return torch.equal(a[0], b[0]) and all((g is None and h is None) or torch.equal(g, h) for g, h in zip(a[1], b[1]))


def test_a_plan_is_made_again_when_a_tensor_is_replaced_frozen_or_converted():
    torch.manual_seed(0)
    module, x = _Pair().train(), torch.randn(3, 6, 9)
    plan = cut_plan(module, 5)
    assert cut_plan(module, 5) is plan and _same(*_joint_and_plain(module, x, 5))
    module.conv.weight = nn.Parameter(torch.randn(8, 6, 5))  # replaced: the old plan would train a lost tensor
    assert cut_plan(module, 5) is not plan and _same(*_joint_and_plain(module, x, 5))
    module.bn.bias.requires_grad_(False)  # frozen: no gradient, no joint cut
    assert _same(*_joint_and_plain(module, x, 5)) and module.bn.bias.grad is None
    module.double()
    assert _same(*_joint_and_plain(module, x.double(), 5))


def test_mixed_dtypes_fall_back_to_cutting_each_tensor():
    torch.manual_seed(0)
    module = _Pair().train()
    module.bn.double()
    tensors = cut_together([cut_plan(module, 5)])[0]
    assert tensors["bn"]["weight"].dtype == torch.float64 and tensors["conv"]["weight"].dtype == torch.float32
    assert type(tensors["conv"]["weight"].grad_fn).__name__ != "_CutTogetherBackward"
    assert torch.equal(tensors["bn"]["weight"], module.bn.weight[:5])

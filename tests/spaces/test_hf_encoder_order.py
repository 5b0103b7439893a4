"""hf_encoder's importance order: exact (the full model unchanged) and useful (smaller subnets lose less)."""
import numpy as np
import pytest
import torch
from tests.support.hf_encoder import save_kind

from search_spaces.hf_encoder import order, testing
from search_spaces.hf_encoder.config import with_model
from supernet.core.registry import build_supernet, space_config

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.mark.parametrize("kind", ["bert", "vit"])
def test_order_keeps_the_full_model_and_sorts_units(tmp_path, kind):
    folder = save_kind(tmp_path / kind, kind)
    net = build_supernet("hf_encoder", with_model(space_config("hf_encoder", "default"), str(folder))).eval()
    x = net.space.example_input(net.space.largest(), 8, torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = net(x, net.space.largest())
    head_perm, neuron_perm = order.sort_units(net, [x[:4], x[4:]])
    assert not any(p.grad is not None for p in net.parameters())  # no gradients left behind
    with torch.no_grad():
        assert (net(x, net.space.largest()) - before).abs().max() <= 1e-5
    heads, neurons = order.importance(net, [x[:4], x[4:]])  # measured again: now in descending order
    assert torch.all(heads[:, :-1] >= heads[:, 1:] * (1 - 1e-4))
    assert torch.all(neurons[:, :-1] >= neurons[:, 1:] * (1 - 1e-4))
    assert any(not torch.equal(p, torch.arange(len(p))) for p in list(head_perm) + list(neuron_perm))


@pytest.mark.slow
def test_order_lowers_the_smallest_subnets_loss(tmp_path):
    """Three small BERTs trained on a keyword task: the smallest subnet (1 of 4 heads, 16 of 64 channels per
    layer) loses less on held-out data after ordering than in the stored order, on average."""
    runs = [testing.ordering_effect(tmp_path / f"m{seed}", seed) for seed in range(3)]
    for r in runs:
        assert abs(r["largest_ordered"] - r["largest_unordered"]) < 1e-5
    ordered = np.mean([r["smallest_ordered"] for r in runs])
    unordered = np.mean([r["smallest_unordered"] for r in runs])
    assert ordered < unordered - 0.05, (ordered, unordered)


@pytest.mark.parametrize("kind", ["bert", "vit"])
def test_hidden_order_keeps_the_full_model_and_sorts_channels(tmp_path, kind):
    from dataclasses import replace
    folder = save_kind(tmp_path / kind, kind)
    cfg = replace(with_model(space_config("hf_encoder", "default"), str(folder)), hidden_fractions=(0.5, 1.0))
    net = build_supernet("hf_encoder", cfg).eval()
    x = net.space.example_input(net.space.largest(), 8, torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = net(x, net.space.largest())
    perm = order.sort_hidden(net, [x[:4], x[4:]])
    assert not torch.equal(perm, torch.arange(len(perm))) and sorted(perm.tolist()) == list(range(32))
    with torch.no_grad():
        assert (net(x, net.space.largest()) - before).abs().max() <= 1e-5
    scores = order.hidden_importance(net, [x[:4], x[4:]])
    assert torch.all(scores[:-1] >= scores[1:] * (1 - 1e-4))

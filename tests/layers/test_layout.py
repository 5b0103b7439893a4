"""The CPU training layout (supernet.layers.layout): same function, channels-last execution, plain
layout everywhere else."""
import pytest
import torch
from torch import nn

from supernet.core.registry import build_supernet, space_config
from supernet.layers import layout


def _net(variant):
    torch.manual_seed(0)
    supernet = build_supernet("mobilenet", space_config("mobilenet", variant)).train()
    return supernet, supernet.space.largest()


def _input(supernet, arch, batch=8):
    return torch.randn(batch, supernet.config.in_channels, *[arch["r"]] * supernet.config.ndim)


def _depthwise_inputs(module, run):
    """Shapes and channels-last flags of the inputs the first block's depthwise conv saw during ``run()``."""
    seen = []
    hook = module.register_forward_hook(
        lambda m, i, o: seen.append((i[0].dim(), i[0].is_contiguous(memory_format=torch.channels_last))))
    run()
    hook.remove()
    return seen


def _logits_and_grads(net, x, monkeypatch, plain: bool):
    if plain:
        monkeypatch.setattr(layout, "training_layout", lambda t: t)
    net.zero_grad(set_to_none=True)
    y = net(x)
    y.square().mean().backward()
    monkeypatch.undo()
    return y.detach(), {n: p.grad.clone() for n, p in net.named_parameters()}


@pytest.mark.parametrize("variant", ["tiny", "tiny2d"])
def test_training_runs_channels_last_and_computes_what_the_plain_layout_computes(variant, monkeypatch):
    supernet, arch = _net(variant)
    static = supernet.extract(arch).train()
    x = _input(supernet, arch)
    seen = _depthwise_inputs(static.blocks[0].depthwise, lambda: static(x).sum().backward())
    assert seen == [(4, True)]
    for net in (static, _Bound(supernet, arch)):
        y_fast, g_fast = _logits_and_grads(net, x, monkeypatch, False)
        y_plain, g_plain = _logits_and_grads(net, x, monkeypatch, True)
        assert torch.allclose(y_fast, y_plain, atol=1e-5)
        for name, g in g_plain.items():
            scale = g.abs().max().clamp_min(1e-4)
            assert (g_fast[name] - g).abs().max() <= 1e-3 * scale, name


class _Bound(nn.Module):
    """``supernet(x, arch)`` as a one-argument module (parameters: the supernet's)."""

    def __init__(self, supernet, arch):
        super().__init__()
        self.supernet, self.arch = supernet, arch

    def forward(self, x):
        return self.supernet(x, self.arch)


def test_inference_keeps_the_plain_layout():
    supernet, arch = _net("tiny")
    static = supernet.extract(arch).eval()
    x = _input(supernet, arch)
    with torch.no_grad():
        seen = _depthwise_inputs(static.blocks[0].depthwise, lambda: static(x))
    assert [dim for dim, _ in seen] == [3]  # (B, C, L): the 1-D kernels, as exported


def test_the_1d_layers_keep_the_state_dict_of_torch_nn():
    conv, plain = layout.Conv1d(8, 16, 5, 2, 2, groups=8), nn.Conv1d(8, 16, 5, 2, 2, groups=8)
    assert {k: v.shape for k, v in conv.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}
    plain.load_state_dict(conv.state_dict())
    x = torch.randn(3, 8, 20)
    assert torch.equal(conv(x), plain(x))
    assert torch.allclose(conv(x.unsqueeze(2)).squeeze(2), plain(x), atol=1e-6)
    bn = layout.BatchNorm1d(8)
    assert bn(torch.randn(4, 8, 1, 6)).shape == (4, 8, 1, 6)
    with pytest.raises(ValueError):
        bn(torch.randn(4, 8, 2, 6))  # a real 2-D batch is not a 1-D one


@pytest.mark.slow
def test_bench_layout_times_both_layouts_and_checks_them_against_float64(tmp_path):
    import json
    from benchmarks import bench_layout
    out = tmp_path / "layout.json"
    assert bench_layout.main(["--cases", "mnist1d", "--repeats", "1", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["arch"] for r in rows] == ["smallest", "middle", "largest"]
    assert layout.training_layout is bench_layout.LAYOUT  # restored after timing the plain layout
    for r in rows:
        assert r["static_layout_s"] > 0 and r["static_plain_s"] > 0
        assert r["layout_grad_rel_diff_vs_fp64"] < 0.1 and r["layout_max_logit_diff_vs_fp64"] < 1e-3

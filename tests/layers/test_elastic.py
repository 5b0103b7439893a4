import pytest
import torch

from supernet.layers.calibration import calibrate_bn
from supernet.layers.elastic import ElasticBatchNorm, ElasticConv, ElasticLayerNorm, ElasticLinear, centre, first, window


@pytest.mark.parametrize("ndim", [1, 2])
@pytest.mark.parametrize("depthwise", [False, True])
def test_conv_slice_matches_static_and_is_centred(ndim, depthwise):
    torch.manual_seed(0)
    conv = ElasticConv(ndim, 8, 8, 7, stride=2, depthwise=depthwise, bias=True)
    x = torch.randn(2, 6, *([11] * ndim))
    y = conv(x, out_channels=5, kernel_size=3)
    static = conv.static(6, 5, 3)
    assert torch.allclose(y, static(x), atol=1e-6)
    assert y.shape[1] == (6 if depthwise else 5)
    centre = static.weight[(slice(None), slice(None)) + (1,) * ndim]
    full = conv.weight[(slice(None, static.weight.shape[0]), slice(None, static.weight.shape[1])) + (3,) * ndim]
    assert torch.equal(centre, full)  # the 3-tap kernel is the middle of the 7-tap one


def test_conv_gradient_reaches_only_the_active_slice():
    conv = ElasticConv(1, 8, 8, 5)
    conv(torch.randn(2, 4, 9), out_channels=3, kernel_size=3).sum().backward()
    g = conv.weight.grad
    assert g[:3, :4, 1:4].abs().sum() > 0
    mask = torch.ones_like(g, dtype=torch.bool)
    mask[:3, :4, 1:4] = False
    assert g[mask].abs().sum() == 0


def test_a_tensor_used_whole_is_not_viewed_and_a_window_is_one_index():
    conv, bn = ElasticConv(2, 8, 8, 5, bias=True), ElasticBatchNorm(2, 8)
    whole = conv.sliced(8, 8, 5)
    assert whole["weight"] is conv.weight and whole["bias"] is conv.bias  # no view, so no autograd node
    assert all(t is getattr(bn, k) for k, t in bn.sliced(8).items())
    w = window(conv.weight, (first(3, 8), first(9, 8), centre(5, 3), centre(5, 3)))
    assert torch.equal(w, conv.weight[:3, :, 1:4, 1:4])
    assert centre(5, 5) == first(8, 8) == slice(None)


def _nodes(t: torch.Tensor) -> list[str]:
    """Names of the autograd nodes between ``t`` and its leaf."""
    names, fn = [], t.grad_fn
    while fn is not None and type(fn).__name__ != "AccumulateGrad":
        names.append(type(fn).__name__)
        fn = fn.next_functions[0][0]
    return names


def test_a_cut_along_several_axes_or_with_a_unit_axis_is_one_node_with_the_same_gradient():
    w = torch.randn(8, 6, 7, requires_grad=True)
    index = (first(5, 8), first(4, 6), centre(7, 3))
    for unit_axis in (None, 2):
        v = window(w, index, unit_axis)
        ref = w[:5, :4, 2:5] if unit_axis is None else w[:5, :4, 2:5].unsqueeze(2)
        assert torch.equal(v, ref) and len(_nodes(v)) == 1
        g = torch.randn(v.shape)
        assert torch.equal(torch.autograd.grad(v, w, g)[0], torch.autograd.grad(ref, w, g)[0])
    assert _nodes(window(w, (first(5, 8),))) == ["SliceBackward0"]  # one axis: a plain slice
    assert window(w, (first(8, 8),)) is w and _nodes(window(w, (first(8, 8),), 2)) == ["UnsqueezeBackward0"]


def test_the_1d_training_layout_cuts_each_kernel_in_one_node():
    conv = ElasticConv(1, 8, 8, 7, bias=True)
    x = torch.randn(2, 6, 1, 11).contiguous(memory_format=torch.channels_last)  # (B, C, 1, L), see supernet.layers.layout
    y = conv(x, out_channels=5, kernel_size=3)
    weight_node = y.grad_fn.next_functions[1][0]  # ConvolutionBackward0's inputs: (input, weight, bias)
    assert type(weight_node).__name__ == "AsStridedBackward0"  # sliced and unsqueezed in one node
    assert weight_node.next_functions[0][0].variable is conv.weight
    assert torch.allclose(y.squeeze(2), conv(x.squeeze(2), out_channels=5, kernel_size=3), atol=1e-6)


def test_batchnorm_statistics_views_follow_a_replaced_buffer():
    bn = ElasticBatchNorm(1, 8).train()
    x = torch.randn(4, 5, 6) * 3 + 2
    bn(x)
    first_mean = bn.running_mean.clone()
    assert torch.all(first_mean[:5] != 0) and torch.all(first_mean[5:] == 0)
    bn.double()  # replaces the buffers: views of the old ones must not be reused
    bn(x.double())
    assert bn.running_mean.dtype == torch.float64
    assert not torch.allclose(bn.running_mean[:5], first_mean[:5].double())  # the new buffer was updated
    with torch.no_grad():
        bn.running_mean.copy_(torch.arange(8.0))  # an in-place load keeps the views valid
    assert torch.equal(bn.sliced(5)["running_mean"], torch.arange(5.0, dtype=torch.float64))


def test_linear_and_layernorm_match_static():
    lin, ln = ElasticLinear(10, 12), ElasticLayerNorm(12)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-1, 1)
    x = torch.randn(3, 7)
    h = lin(x, out_features=9)
    assert torch.allclose(h, lin.static(7, 9)(x), atol=1e-6)
    assert torch.allclose(ln(h), ln.static(9)(h), atol=1e-6)


@pytest.mark.parametrize("ndim", [1, 2])
def test_batchnorm_updates_and_uses_sliced_statistics(ndim):
    bn = ElasticBatchNorm(ndim, 8)
    x = torch.randn(4, 5, *([6] * ndim)) * 3 + 2
    bn.train()
    bn(x)
    assert torch.all(bn.running_mean[:5] != 0) and torch.all(bn.running_mean[5:] == 0)
    bn.eval()
    assert torch.allclose(bn(x), bn.static(5).eval()(x), atol=1e-6)


def test_calibration_gives_exact_average_of_batch_statistics():
    bn = ElasticBatchNorm(1, 4, momentum=0.1)
    batches = [torch.randn(8, 3, 5) * (i + 1) + i for i in range(3)]
    calibrate_bn(bn, bn, batches)
    means = torch.stack([b.mean(dim=(0, 2)) for b in batches]).mean(0)
    vars_ = torch.stack([b.transpose(0, 1).reshape(3, -1).var(1, unbiased=True) for b in batches]).mean(0)
    assert torch.allclose(bn.running_mean[:3], means, atol=1e-5)
    assert torch.allclose(bn.running_var[:3], vars_, atol=1e-4)
    assert bn.momentum == 0.1 and not bn.training

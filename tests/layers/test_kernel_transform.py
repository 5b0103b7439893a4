"""OFA's kernel transformation in ElasticConv: the formula, one definition for forward and extract, gradients."""
import torch

from supernet.layers.cuts import cut_plan, cut_together
from supernet.layers.elastic import ElasticConv


def conv(seed=0):
    torch.manual_seed(seed)
    layer = ElasticConv(2, 6, 6, 7, depthwise=True, transform_kernels=(3, 5, 7))
    with torch.no_grad():
        for name in ("7to5_matrix", "5to3_matrix"):
            getattr(layer, name).add_(torch.randn(getattr(layer, name).shape) * 0.2)
    return layer


def test_smaller_kernels_are_the_transformed_centre():
    layer = conv()
    w, m75, m53 = layer.weight[:4], layer.get_parameter("7to5_matrix"), layer.get_parameter("5to3_matrix")
    five = (w[:, :, 1:6, 1:6].reshape(4, 1, 25) @ m75.T).reshape(4, 1, 5, 5)  # w5 = M75 flat(centre5(w7))
    three = (five[:, :, 1:4, 1:4].reshape(4, 1, 9) @ m53.T).reshape(4, 1, 3, 3)
    assert torch.allclose(layer.sliced(4, 4, 5)["weight"], five, atol=1e-6)
    assert torch.allclose(layer.sliced(4, 4, 3)["weight"], three, atol=1e-6)
    assert torch.equal(layer.sliced(4, 4, 7)["weight"], w)  # the largest kernel is the weight itself
    plain = ElasticConv(2, 6, 6, 7, depthwise=True)
    assert torch.equal(plain.sliced(6, 6, 3)["weight"], plain.weight[:, :, 2:5, 2:5])  # off: the plain centre


def test_forward_equals_extract_and_matrices_learn():
    layer = conv(1)
    x = torch.randn(2, 4, 9, 9)
    for k in (3, 5, 7):
        static = layer.static(4, 4, k)
        assert torch.allclose(layer(x, kernel_size=k), static(x), atol=1e-6)
    layer.zero_grad()
    plan = cut_plan(layer, 4, 4, 3, None)  # the joint cut of training carries the matrices too
    tensors = cut_together([plan])[0]
    layer(x, kernel_size=3, tensors=tensors).square().sum().backward()
    assert layer.get_parameter("7to5_matrix").grad.abs().sum() > 0
    assert layer.get_parameter("5to3_matrix").grad.abs().sum() > 0
    assert layer.weight.grad[4:].abs().sum() == 0 and layer.weight.grad[:4].abs().sum() > 0

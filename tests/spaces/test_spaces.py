"""Shared tests every registered space gets through its ``tiny`` variants."""
import pytest
import torch
from tests.support import archs_of, input_for, tiny_variants
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from supernet.core.contract import hook
from supernet.core.registry import build_supernet, space_config


def make(name, variant):
    torch.manual_seed(0)
    model = build_supernet(name, space_config(name, variant))
    with torch.no_grad():  # zero-initialised trainable tensors (LoRA's B) would block their partners' gradients
        for p in model.parameters():
            if p.requires_grad and p.dim() > 1 and not p.any():
                p.normal_(0, 0.02)
    return model


def perturb_bn(model):
    """Non-trivial BN statistics so that equality tests see them."""
    g = torch.Generator().manual_seed(1)
    for name, buf in model.named_buffers():
        if name.endswith("running_mean"):
            buf.copy_(torch.randn(buf.shape, generator=g) * 0.1)
        elif name.endswith("running_var"):
            buf.copy_(torch.rand(buf.shape, generator=g) + 0.5)


@pytest.mark.parametrize("name,variant", tiny_variants())
def test_every_active_parameter_gets_a_gradient(name, variant):
    model = make(name, variant)
    for arch in archs_of(model.space):
        model.zero_grad(set_to_none=True)
        model.train()
        out = model(input_for(model, arch), arch)
        assert out.shape[0] == 4 and out.shape[-1] == model.config.num_classes
        out.square().mean().backward()
        state = model.extract(arch).state_dict()
        grads = {n: p.grad for n, p in model.named_parameters()}
        touched = sum(int((g != 0).sum()) for g in grads.values() if g is not None)
        n_params = hook(model, "params")(arch)
        assert n_params == sum(v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k)
        # the trainable parameters the arch uses are exactly those that got gradients (all of the
        # extracted subnet's, unless the space freezes a base model and trains adapters)
        n_trainable = hook(model, "trainable_params")(arch)
        assert touched >= 0.98 * n_trainable  # a few exact zeros (ReLU) are allowed
        assert not any(p.grad is not None for p in model.parameters() if not p.requires_grad)


@pytest.mark.parametrize("name,variant", tiny_variants())
def test_extract_equals_forward(name, variant):
    model = make(name, variant)
    with torch.no_grad():
        perturb_bn(model)
    model.eval()
    for arch in archs_of(model.space, n_random=3):
        x = input_for(model, arch)
        static = model.extract(arch).eval()
        assert torch.allclose(static(x), model(x, arch), atol=1e-5)
        assert "Elastic" not in "".join(type(m).__name__ for m in static.modules())


@pytest.mark.parametrize("name,variant", tiny_variants() + [("mobilenet", "mnist1d"), ("mobilenet", "ofa")])
def test_flops_and_params_match_torch_counters(name, variant):
    model = make(name, variant)
    for arch in archs_of(model.space, n_random=2):
        static = model.extract(arch).eval()
        # the math attention kernel, whose products the counter sees (it does not count fused kernels)
        with FlopCounterMode(display=False) as counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
            static(input_for(model, arch, batch=1))
        assert hook(model, "flops")(arch) * 2 == counter.get_total_flops()
        assert hook(model, "params")(arch) == sum(p.numel() for p in static.parameters())


def test_default_2d_variant_matches_ofa_choices():
    space = make("mobilenet", "ofa").space
    dims = {d.name: d for d in space.dimensions}
    assert dims["ks"].choices == (3, 5, 7) and dims["e"].choices == (3, 4, 6) and dims["d"].choices == (2, 3, 4)
    assert dims["d"].length == 5 and dims["ks"].length == 20
    assert space.cardinality() == (9 ** 2 + 9 ** 3 + 9 ** 4) ** 5 * len(dims["r"].choices)


def test_ofa_variant_counts_match_dynast_measurements():
    """MACs and params of OFA MobileNetV3 subnets as logged by DyNAS-T (../shared/data)."""
    import ast
    import csv
    from pathlib import Path

    folder = Path(__file__).resolve().parents[3] / "shared" / "data" / "dynast_ofa_mbv3"
    if not folder.is_dir():
        pytest.skip(f"external data {folder} is not beside this checkout")
    model = make("mobilenet", "ofa")
    checked = 0
    for path in sorted(folder.glob("*.csv")):
        for row in list(csv.DictReader(open(path)))[:40]:
            a = ast.literal_eval(row["Sub-network"])
            arch = model.space.make({"ks": a["ks"], "e": a["e"], "d": a["d"], "r": a["r"][0]})
            assert model.flops(arch) == int(row["MACs"]) and model.params(arch) == int(row["Model Parameters"])
            checked += 1
    assert checked == 200

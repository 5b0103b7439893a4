"""The shared checks of a space, as functions: ``tests/spaces/test_spaces.py`` runs them on every registered
``tiny*`` variant, ``tests/spaces/test_user_space.py`` on a user's space loaded from a ``.py`` path."""
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from supernet.core.contract import hook
from supernet.core.registry import build_supernet, space_config

from . import archs_of, input_for


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


def nonzero_grads(module) -> int:
    return sum(int((p.grad != 0).sum()) for p in module.parameters() if p.grad is not None)


def check_gradients(model):
    """Every trainable parameter an arch uses gets its gradient; frozen ones get none; params == the static
    subnet's; the outputs' last axis is the static subnet's (no config field is read).

    Where the arch trains all of its static subnet's parameters, the supernet's non-zero gradient
    elements are counted against the static subnet's on the same batch (at least as many): a unit that the batch
    leaves dead (ReLU) has zero gradients in both, so any activation passes, while a slice whose
    gradient does not flow (detached, or another slice than extract's) is missed. A space that
    trains adapters on a frozen base (its trainable parameters are not the static subnet's) must
    reach 98 % of them."""
    for arch in archs_of(model.space):
        model.zero_grad(set_to_none=True)
        model.train()
        static = model.extract(arch).train()
        x = input_for(model, arch)
        out = model(x, arch)
        assert out.shape[0] == 4 and out.shape[-1] == static(x).shape[-1]
        out.square().mean().backward()
        touched = nonzero_grads(model)
        n_params, n_trainable = hook(model, "params")(arch), hook(model, "trainable_params")(arch)
        assert n_params == sum(v.numel() for k, v in static.state_dict().items()
                               if "running" not in k and "num_batches" not in k)
        if n_trainable == n_params:
            static(x).square().mean().backward()
            reached = nonzero_grads(static)
            # at least the static subnet's (more where a static weight is computed from several supernet
            # tensors, e.g. OFA's kernel transformation matrices)
            assert touched >= reached - n_params // 1000 and reached > n_params // 2, (arch, touched, reached)
        else:
            assert touched >= 0.98 * n_trainable, (arch, touched, n_trainable)
        assert not any(p.grad is not None for p in model.parameters() if not p.requires_grad)


def check_extract_equals_forward(model, n_random=3):
    with torch.no_grad():
        perturb_bn(model)
    model.eval()
    for arch in archs_of(model.space, n_random=n_random):
        x = input_for(model, arch)
        static = model.extract(arch).eval()
        assert torch.allclose(static(x), model(x, arch), atol=1e-5)
        assert "Elastic" not in "".join(type(m).__name__ for m in static.modules())


def check_counts(model, n_random=2):
    for arch in archs_of(model.space, n_random=n_random):
        static = model.extract(arch).eval()
        # the math attention kernel, whose products the counter sees (it does not count fused kernels)
        with FlopCounterMode(display=False) as counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
            static(input_for(model, arch, batch=1))
        assert hook(model, "flops")(arch) * 2 == counter.get_total_flops()
        assert hook(model, "params")(arch) == sum(p.numel() for p in static.parameters())

"""The shared checks of a space, as functions: ``tests/spaces/test_spaces.py`` runs them on every registered
``tiny*`` variant, ``tests/spaces/test_user_space.py`` on a user's space loaded from a ``.py`` path."""
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from supernet.core.contract import hook
from supernet.core.registry import build_supernet, space_config

from . import archs_of, input_for

BATCHES = 8  # batches (seeds) the gradient check may draw until every trainable parameter is reached


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


def touched_after(model, arch, batches: int) -> tuple[int, torch.Tensor]:
    """Parameter elements with a non-zero gradient summed over up to ``batches`` example batches (seeds
    0, 1, ...), stopping once 98 % of the arch's trainable parameters are reached; and the first output.

    A unit that one batch leaves dead (a ReLU below zero for every example) is reached by another
    batch, so any activation passes; a parameter the arch uses but whose gradient never flows (a
    detached slice) is never reached."""
    model.zero_grad(set_to_none=True)
    model.train()
    need, first, touched = 0.98 * hook(model, "trainable_params")(arch), None, 0
    for seed in range(batches):
        out = model(input_for(model, arch, seed=seed), arch)
        first = out if first is None else first
        out.square().mean().backward()
        touched = sum(int((p.grad != 0).sum()) for p in model.parameters() if p.grad is not None)
        if touched >= need:
            break
    return touched, first


def check_gradients(model):
    """Every trainable parameter an arch uses gets a gradient; frozen ones get none; params == the static
    subnet's; the outputs' last axis is the static subnet's (no config field is read)."""
    for arch in archs_of(model.space):
        touched, out = touched_after(model, arch, BATCHES)
        static = model.extract(arch).eval()
        with torch.no_grad():
            want = static(input_for(model, arch, batch=1)).shape[-1]
        assert out.shape[0] == 4 and out.shape[-1] == want
        state = static.state_dict()
        assert hook(model, "params")(arch) == sum(v.numel() for k, v in state.items()
                                                  if "running" not in k and "num_batches" not in k)
        # the trainable parameters the arch uses are exactly those that got gradients (all of the
        # extracted subnet's, unless the space freezes a base model and trains adapters)
        n_trainable = hook(model, "trainable_params")(arch)
        assert touched >= 0.98 * n_trainable, (arch, touched, n_trainable)
        assert touched <= n_trainable, (arch, touched, n_trainable)
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

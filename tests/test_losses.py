import pytest
import torch
import torch.nn.functional as F

from supernet.losses import adaptive_alpha_divergence, alpha_divergence, kl_divergence


def logits(seed, scale=2.0):
    return torch.randn(6, 5, generator=torch.Generator().manual_seed(seed)) * scale


def true_divergence(q_logits, p_logits, alpha):
    """D_a(p || q) written directly from the definition, differentiable in q."""
    q, p = q_logits.softmax(1), p_logits.softmax(1)
    return ((q * ((p / q) ** alpha - 1)).sum(1) / (alpha * (alpha - 1))).mean()


@pytest.mark.parametrize("alpha", [-1.0, -0.5, 0.5, 2.0])
def test_surrogate_gradient_equals_divergence_gradient(alpha):
    student, teacher = logits(0, 1.0).requires_grad_(), logits(1, 1.0)
    d, surrogate = alpha_divergence(student, teacher, alpha, clamp=1e9)
    (g_sur,) = torch.autograd.grad(surrogate.mean(), student)
    (g_true,) = torch.autograd.grad(true_divergence(student, teacher, alpha), student)
    assert torch.allclose(g_sur, g_true, atol=1e-5)
    assert torch.allclose(d.mean(), true_divergence(student, teacher, alpha).detach(), atol=1e-5)


def test_limits_are_the_two_kl_divergences():
    s, t = logits(2), logits(3)
    log_q, log_p = F.log_softmax(s, 1), F.log_softmax(t, 1)
    kl_pq = (log_p.exp() * (log_p - log_q)).sum(1)
    kl_qp = (log_q.exp() * (log_q - log_p)).sum(1)
    assert torch.allclose(alpha_divergence(s, t, 1.0)[0], kl_pq, atol=1e-5)
    assert torch.allclose(alpha_divergence(s, t, 0.0)[0], kl_qp, atol=1e-5)
    assert torch.allclose(alpha_divergence(s, t, 1.0 - 1e-4)[0], kl_pq, atol=1e-3)


def test_divergence_is_zero_only_at_the_teacher():
    s = logits(4)
    for alpha in (-1.0, 1.0):
        assert alpha_divergence(s, s, alpha)[0].abs().max() < 1e-6
        assert (alpha_divergence(s, logits(5), alpha)[0] > 0).all()


def test_adaptive_loss_takes_the_larger_divergence_per_sample():
    s, t = logits(6, 3.0).requires_grad_(), logits(7, 3.0)
    loss, div = adaptive_alpha_divergence(s, t, -1.0, 1.0, clamp=5.0)
    d_lo, s_lo = alpha_divergence(s, t, -1.0, 5.0)
    d_hi, s_hi = alpha_divergence(s, t, 1.0, 5.0)
    assert torch.allclose(div, torch.maximum(d_lo, d_hi).mean())
    assert torch.allclose(loss, torch.where(d_lo > d_hi, s_lo, s_hi).mean())
    assert (d_lo > d_hi).any() and (d_lo <= d_hi).any()  # both branches are exercised
    loss.backward()
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_clamp_bounds_the_importance_weight():
    t = torch.tensor([[-2.0, 2.0, 0.0]])
    grads = []
    for clamp in (5.0, 1e12):
        s = torch.tensor([[2.0, -2.0, 0.0]], requires_grad=True)
        alpha_divergence(s, t, -1.0, clamp=clamp)[1].sum().backward()
        grads.append(s.grad.norm().item())
    assert 0 < grads[0] < grads[1]


def test_kl_matches_torch():
    s, t = logits(8), logits(9)
    loss, _ = kl_divergence(s, t)
    expected = F.kl_div(F.log_softmax(s, 1), F.softmax(t, 1), reduction="batchmean")
    assert torch.allclose(loss, expected, atol=1e-6)

import pytest
import torch
import torch.nn.functional as F

from supernet.core.losses import adaptive_alpha_divergence, alpha_divergence, kl_divergence


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
    assert torch.allclose(alpha_divergence(s, t, 0.0, clamp=1e9)[0], kl_qp, atol=1e-5)  # unclamped
    assert torch.allclose(alpha_divergence(s, t, 1.0 - 1e-4, clamp=1e9)[0], kl_pq, atol=1e-3)


def test_divergence_is_zero_only_at_the_teacher():
    s = logits(4)
    for alpha in (-1.0, 1.0):
        assert alpha_divergence(s, s, alpha)[0].abs().max() < 1e-6
        assert (alpha_divergence(s, logits(5), alpha)[0] > 0).all()


def test_adaptive_loss_takes_the_larger_divergence_per_sample():
    s, t = logits(6, 1.0).requires_grad_(), logits(7, 1.0)
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


def alphanet_reference(q_logits, p_logits, alpha_min=-1.0, alpha_max=1.0, iw_clip=5.0):
    """AlphaNet's AdaptiveLossSoft (facebookresearch/AlphaNet, loss_ops.py), from its formulas:
    per sample, the side with the larger *clamped* f-divergence; returns its surrogate's mean."""
    def side(alpha):
        q = q_logits.softmax(1).detach()
        p = p_logits.softmax(1).detach()
        w = p / q
        if abs(alpha - 1.0) < 1e-3:
            f, base, rho = w * w.log(), 0.0, w
        else:
            w_a = w.pow(alpha).clamp(0, iw_clip)
            f, base = w_a / alpha / (alpha - 1.0), 1.0 / alpha / (alpha - 1.0)
            rho = w_a / alpha + base
        return (q * (f - base)).sum(1), -(q * rho * F.log_softmax(q_logits, 1)).sum(1)
    (lo, g_lo), (hi, g_hi) = side(alpha_min), side(alpha_max)
    return torch.where(lo > hi, g_lo, g_hi).mean()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adaptive_loss_gradient_matches_alphanet(seed):
    s = (logits(10 + seed, 4.0)).requires_grad_()
    t = logits(20 + seed, 6.0)
    (ours,) = torch.autograd.grad(adaptive_alpha_divergence(s, t, -1.0, 1.0, 5.0)[0], s)
    (ref,) = torch.autograd.grad(alphanet_reference(s, t), s)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_a_student_with_mass_where_the_teacher_has_none_gets_the_kl_gradient():
    # teacher sure of class 0 (p_other ~ 5e-5), student uniform: unclamped D_-1 is ~1800 and would win;
    # clamped it is ~1.5 < KL(p || q) ~ 1.6, so the student learns from KL(p || q), as in AlphaNet
    t = torch.tensor([[10.0, 0.0, 0.0, 0.0, 0.0]])
    s = torch.zeros(1, 5, requires_grad=True)
    loss, div = adaptive_alpha_divergence(s, t, -1.0, 1.0, 5.0)
    (g,) = torch.autograd.grad(loss, s)
    (g_kl,) = torch.autograd.grad(kl_divergence(s, t)[0], s)
    assert torch.allclose(g, g_kl, atol=1e-5)
    assert div.item() == pytest.approx(kl_divergence(s, t)[1].item(), rel=1e-5)

"""Distillation losses: AlphaNet's adaptive alpha-divergence and plain KL.

Notation: ``p`` is the teacher distribution (detached), ``q`` the student's. The
alpha-divergence (Amari) of ``p`` from ``q`` is

    D_a(p || q) = 1 / (a (a - 1)) * sum_i q_i [ (p_i / q_i)^a - 1 ]

with D_1 = KL(p || q) and D_0 = KL(q || p) as limits. AlphaNet computes D for
``alpha_min`` (< 0, mode seeking) and ``alpha_max`` (> 0, mass covering) per sample and
back-propagates the larger one. Its gradient w.r.t. the student logits is estimated by
the surrogate

    S_a = - sum_i q_i * stopgrad(rho_a(w_i)) * log q_i,   w_i = p_i / q_i,
    rho_a(w) = (w^a - 1) / a   (rho_0 = log w),

whose gradient equals grad D_a exactly when ``w^a`` is not clamped; ``w^a`` is clamped to
``[0, clamp]`` for stability (AlphaNet's ``iw_clip``, default 5; for ``a = 0`` it is ``w``
that is clamped, as in AlphaNet's code). The divergence that picks the side, and that is
logged, is computed with the same clamped weights, as AlphaNet's ``f_divergence`` does:

    D~_a = 1 / (a (a - 1)) * sum_i q_i [ min(w_i^a, clamp) - 1 ]   (a not in {0, 1})

Unclamped, ``D_amin`` (a < 0) grows like ``q_i^2 / p_i`` wherever the student keeps mass
the teacher rules out, so it would win the comparison nearly always and hand the student
the saturated, mode-seeking gradient instead of KL(p || q)'s (a bug we had: students at
the start of training barely learned).

Distributions run over the **last axis**: class logits ``(B, C)`` give one divergence per
sample, language-model logits ``(B, T, V)`` one per token; the mean is over every leading
position. Everything is computed in fp32, also under autocast (bf16 / fp16 logits are cast
up first), so the log-ratios and their exponentials do not lose precision.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_EPS = 1e-3


def _log_probs(logits: torch.Tensor) -> torch.Tensor:
    """fp32 log-softmax over the last axis, outside autocast."""
    with torch.autocast(logits.device.type, enabled=False):
        return F.log_softmax(logits.float(), dim=-1)


def alpha_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, alpha: float,
                     clamp: float = 5.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-position ``(D~_alpha, surrogate)`` over the last axis (shape: the logits' leading
    axes): the divergence with clamped weights (the exact ``D_alpha`` when nothing is
    clamped), detached; the surrogate carries the gradient."""
    log_q = _log_probs(student_logits)  # (..., K)
    q = log_q.exp().detach()
    log_w = _log_probs(teacher_logits.detach()) - log_q.detach()  # log(p / q)
    if abs(alpha) < _EPS:  # KL(q || p)
        log_w = log_w.clamp(max=math.log(clamp))
        divergence = -(q * log_w).sum(-1)
        rho = log_w
    elif abs(alpha - 1.0) < _EPS:  # KL(p || q)
        w = log_w.exp()
        divergence = (q * w * log_w).sum(-1)
        rho = w - 1.0
    else:
        w_a = (alpha * log_w).exp().clamp(0.0, clamp)
        divergence = (q * (w_a - 1.0)).sum(-1) / (alpha * (alpha - 1.0))
        rho = (w_a - 1.0) / alpha
    surrogate = -(q * rho * log_q).sum(-1)
    return divergence, surrogate


def adaptive_alpha_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, alpha_min: float = -1.0,
                              alpha_max: float = 1.0, clamp: float = 5.0) -> tuple[torch.Tensor, torch.Tensor]:
    """AlphaNet's loss: per sample, the surrogate of whichever of D~_amin, D~_amax is larger.

    Returns ``(loss, divergence)``: the mean surrogate to back-propagate and the mean
    divergence ``max(D~_amin, D~_amax)`` (clamped weights, as compared) to log.
    """
    d_min, s_min = alpha_divergence(student_logits, teacher_logits, alpha_min, clamp)
    d_max, s_max = alpha_divergence(student_logits, teacher_logits, alpha_max, clamp)
    pick_min = d_min > d_max
    loss = torch.where(pick_min, s_min, s_max).mean()
    return loss, torch.maximum(d_min, d_max).mean()


def kl_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``KL(p || q) = sum_i p_i (log p_i - log q_i)`` over the last axis, mean over every leading
    position; ``(loss, divergence)``."""
    log_q = _log_probs(student_logits)
    log_p = _log_probs(teacher_logits.detach())
    kl = (log_p.exp() * (log_p - log_q)).sum(-1).mean()
    return kl, kl.detach()


def distillation_loss(kind: str, student_logits, teacher_logits, alpha_min=-1.0, alpha_max=1.0, clamp=5.0):
    """``(loss to back-propagate, divergence to log)`` of ``kind`` ('alpha' or 'kl')."""
    if kind == "alpha":
        return adaptive_alpha_divergence(student_logits, teacher_logits, alpha_min, alpha_max, clamp)
    if kind == "kl":
        return kl_divergence(student_logits, teacher_logits)
    raise ValueError(f"unknown distillation loss {kind!r}; use 'alpha' or 'kl'")

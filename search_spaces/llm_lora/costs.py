"""Exact costs of an ``llm_lora`` arch's merged subnet: parameters, multiply-adds, trainable adapter parameters.

Counted from the base model's shapes (layer 0 stands for every layer: the supported families
have identical layers), so the search asks for thousands of archs without building any.
"""
from __future__ import annotations

from supernet.core.arch import Arch

from .config import ATTN


def params(net, arch: Arch) -> int:
    """Parameters of the merged subnet: per kept layer its projections (MLP at its width) and two norms, plus
    embeddings, the final norm and the LM head (tied embeddings counted once)."""
    c, depth = net.config, net.space.depth(arch)
    per_attn = sum(_linear_params(net, n) for n in ATTN)
    total = depth * (per_attn + 2 * c.hidden_size) + sum(_mlp_params(net, arch["mlp_width"][i]) for i in range(depth))
    embed = c.vocab_size * c.hidden_size
    return total + embed + c.hidden_size + (0 if c.tie_embeddings else embed)


def flops(net, arch: Arch) -> int:
    """Multiply-adds of the merged subnet on one sequence of ``seq_len`` tokens: every linear layer
    (projections, MLP, LM head) and the attention products ``Q K^T`` and ``P V`` (causal SDPA computes
    the full ``T x T`` score matrix: ``2 T^2 heads D``)."""
    c, depth, t = net.config, net.space.depth(arch), net.config.seq_len
    attn = sum(_linear(net, n).weight.numel() for n in ATTN)
    scores = 2 * t * t * c.num_heads * net.layers[0].layer.self_attn.head_dim
    mlp = sum(3 * c.hidden_size * arch["mlp_width"][i] for i in range(depth))
    return depth * (t * attn + scores) + t * mlp + t * c.hidden_size * c.vocab_size


def trainable_params(net, arch: Arch) -> int:
    """Adapter parameters the arch uses: ``r (in + out)`` per adapted layer, MLP sides at its width."""
    c, total = net.config, 0
    for i in range(net.space.depth(arch)):
        ra, rm, w = arch["attn_rank"][i], arch["mlp_rank"][i], arch["mlp_width"][i]
        total += sum(ra * (_linear(net, n).in_features + _linear(net, n).out_features) for n in ATTN)
        total += 2 * rm * (c.hidden_size + w) + rm * (w + c.hidden_size)
    return total


def _linear(net, name: str):
    return net.layers[0].projection(name).base_layer


def _linear_params(net, name: str) -> int:
    linear = _linear(net, name)
    return linear.weight.numel() + (0 if linear.bias is None else linear.bias.numel())


def _mlp_params(net, width: int) -> int:
    h = net.config.hidden_size
    bias = (2 * width + h) if _linear(net, "gate_proj").bias is not None else 0
    return 3 * h * width + bias

"""Exact costs of an ``hf_encoder`` arch's static subnet: parameters and multiply-adds, without building it.

Per kept layer ``i`` (``h_i`` heads of ``d`` channels, ``T`` tokens of one example):

    MACs_i   = T * (sum of the sliced projections' weight sizes) + 2 T^2 h_i d     (Q K^T and P V)
    params_i = the layer's parameters with its projections sliced (:func:`cut_tensors`)

plus what lies outside the layers (embeddings, patch projection, pooler, classifier), which depends on
the hidden size only: parameters counted from the model's tensors narrowed to it, multiply-adds once per
hidden size from ``torch.utils.flop_counter`` on the largest subnet of that size (math attention
kernel) minus its layers' share.
"""
from __future__ import annotations

import torch

from supernet.core.arch import Arch

from .layers import cut_tensors, outside_tensors


def tokens(net) -> int:
    """Tokens per example: ``seq_len`` (text) or patches + 1 (images; DeiT's distillation token too)."""
    c = net.config
    if c.kind == "text":
        return c.seq_len
    extra = 2 if c.model_type == "deit" else 1
    return (c.image_size // c.patch_size) ** 2 + extra


def _layer_params(net, i: int, cut) -> int:
    layer = net.layers[i].layer
    sliced = cut_tensors(layer, net.layout, cut)
    return sum(sliced.get(name, p).numel() for name, p in layer.named_parameters())


def _layer_macs(net, i: int, cut) -> int:
    t, sliced = tokens(net), cut_tensors(net.layers[i].layer, net.layout, cut)
    matrices = sum(w.numel() for name, w in sliced.items() if name.endswith("weight") and w.dim() == 2)
    return t * matrices + 2 * t * t * cut.heads * cut.head_dim


def _outside_params(net, hidden: int) -> int:
    narrowed = outside_tensors(net.model, net.outside_axes, hidden)
    return sum(narrowed.get(n, p).numel() for n, p in net.model.named_parameters()
               if not n.startswith(net.layout.layers + "."))


def params(net, arch: Arch) -> int:
    outside = _outside_params(net, net.space.hidden(arch))
    return outside + sum(_layer_params(net, i, cut) for i, cut in enumerate(net.cuts(arch)) if cut is not None)


def trainable_params(net, arch: Arch) -> int:
    """Parameters of the arch that a batch trains: :func:`params` less the embedding tables (word, position,
    token-type lookups: only the rows of the tokens seen get gradients), at the arch's hidden size."""
    hidden = net.space.hidden(arch)
    tables = sum(m.num_embeddings * hidden for m in net.model.modules() if isinstance(m, torch.nn.Embedding))
    return params(net, arch) - tables


def flops(net, arch: Arch) -> int:
    inner = sum(_layer_macs(net, i, cut) for i, cut in enumerate(net.cuts(arch)) if cut is not None)
    return inner + _outside_macs(net, net.space.hidden(arch))


def _outside_macs(net, hidden: int) -> int:
    cached = getattr(net, "_outside_macs", None)
    if cached is None:
        cached = {}
        object.__setattr__(net, "_outside_macs", cached)
    if hidden not in cached:
        cached[hidden] = _count_outside(net, hidden)
    return cached[hidden]


def _count_outside(net, hidden: int) -> int:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
    largest = net.space.largest()
    if len(net.config.hiddens) > 1:
        largest = net.space.make({**largest.to_dict(), "hidden": hidden})
    static = net.extract(largest).eval()
    x = net.space.example_input(largest, 1, torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        static(x)
    inner = sum(_layer_macs(net, i, cut) for i, cut in enumerate(net.cuts(largest)) if cut is not None)
    return counter.get_total_flops() // 2 - inner


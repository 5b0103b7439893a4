"""Heads and MLP channels of the ``hf_encoder`` supernet in importance order, once before training.

Leading slices keep the first heads and channels, so each layer's are sorted, most important first.
The criterion is the mask importance of Michel et al. (2019) that DynaBERT uses, in its Fisher form
(Kwon et al., 2022, "A fast post-training pruning framework for transformers"): with a gate ``xi``
on the unit's output (1 = kept),

    I_unit = sum over examples x of (dL(x)/d xi_unit)^2 ,   dL/d xi = sum_{t, j in unit} a_{t j} dL/da_{t j}

where ``a`` is the input of the attention output projection (a head: its ``d`` columns) or of the
MLP's second linear (a neuron: one column), measured with the largest arch in eval mode. ``L`` is
the cross-entropy against the model's own predicted class (the calibration batches carry no labels;
for a model fine-tuned on the task its predictions stand in for them). Squares instead of DynaBERT's
absolute values: in a first trial on four small keyword-task BERTs, squares lowered the smallest
subnet's loss for all four, absolute values for three. ``benchmarks/bench_hf_encoder_order.py``
measures the effect (results/bench_hf_encoder_order.json: lower for 3 of 4 seeds, mean held-out
cross-entropy of the smallest subnet 0.74 with the order vs 0.96 without; the largest unchanged).
The reordering is exact: rows of q, k, v and fc1 (and their biases) and columns of o
and fc2 move together, so the full model computes the same function.

When the hidden size is elastic, its channels (the residual stream's) are ordered next, by the same
criterion with one gate per channel shared by every LayerNorm's output (each norm's output is where a
channel enters attention, the MLP or the classifier; Minitron, Muralidharan et al. 2024, scores
embedding channels by the same LayerNorm outputs, by activation):

    I_c = sum over examples x of (sum over norms n, tokens t of y_{n,t,c} dL(x)/dy_{n,t,c})^2

and every tensor on the stream (:func:`.layers.layer_axes`, :func:`.layers.outside_axes`) is permuted
alike, again exactly. Measured (``bench_hf_encoder_order --hidden 0.5``): no reliable gain over the stored
order on small BERTs, nor from five other criteria (docs/results/hf_encoder.md); kept for consistency with
the heads' order.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .layers import ROWS, layer_axes


def importance(supernet, batches) -> tuple[torch.Tensor, torch.Tensor]:
    """``(heads (L, H), neurons (L, I))`` importance scores on ``batches`` (inputs as the data gives them)."""
    c, layers = supernet.config, supernet.layers
    device = next(supernet.parameters()).device
    heads = torch.zeros(c.num_layers, c.num_heads, device=device)
    neurons = torch.zeros(c.num_layers, c.intermediate_size, device=device)
    largest, was_training = supernet.space.largest(), supernet.training
    supernet.eval()
    try:
        for x in batches:
            acts: dict[tuple[int, str], torch.Tensor] = {}
            handles = [layer.linear(role).register_forward_pre_hook(_keep(acts, i, role))
                       for i, layer in enumerate(layers) for role in ("out", "fc2")]
            try:
                with torch.enable_grad():
                    x = supernet.prepare_input(x.to(device), largest)
                    logits = supernet(x, largest)
                    loss = F.cross_entropy(logits.float(), logits.argmax(-1).detach(), reduction="sum")
                    keys = list(acts)
                    grads = torch.autograd.grad(loss, [acts[k] for k in keys])
            finally:
                for handle in handles:
                    handle.remove()
            for (i, role), g in zip(keys, grads):
                gate = (g * acts[(i, role)]).detach().float().sum(dim=1)  # (B, width): summed over tokens
                if role == "out":
                    heads[i] += gate.view(len(gate), c.num_heads, -1).sum(-1).square().sum(0)
                else:
                    neurons[i] += gate.square().sum(0)
    finally:
        supernet.train(was_training)
    return heads, neurons


def _keep(acts: dict, i: int, role: str):
    def hook(module, args):
        acts[(i, role)] = args[0]
    return hook


@torch.no_grad()
def sort_units(supernet, batches) -> tuple[torch.Tensor, torch.Tensor]:
    """Reorder every layer's heads and MLP channels by :func:`importance` (descending); returns the two
    permutations ``(L, H)``, ``(L, I)`` (position k of layer i holds the former unit ``perm[i, k]``)."""
    heads, neurons = importance(supernet, batches)
    head_perm = torch.argsort(heads, dim=1, descending=True, stable=True)
    neuron_perm = torch.argsort(neurons, dim=1, descending=True, stable=True)
    permute(supernet, head_perm, neuron_perm)
    return head_perm, neuron_perm


@torch.no_grad()
def permute(supernet, head_perm: torch.Tensor, neuron_perm: torch.Tensor) -> None:
    """Move head ``head_perm[i][k]`` and channel ``neuron_perm[i][k]`` of layer ``i`` to position ``k``, in place."""
    d = supernet.config.head_dim
    for i, layer in enumerate(supernet.layers):
        hp, np_ = head_perm[i].cpu(), neuron_perm[i].cpu()
        channels = (hp[:, None] * d + torch.arange(d)).reshape(-1)  # the heads' channels, in the new order
        for role, index in (("query", channels), ("key", channels), ("value", channels), ("out", channels),
                            ("fc1", np_), ("fc2", np_)):
            linear, index = layer.linear(role), index.to(layer.linear(role).weight.device)
            dim = 0 if role in ROWS else 1
            linear.weight.data.copy_(linear.weight.data.index_select(dim, index))
            if role in ROWS and linear.bias is not None:
                linear.bias.data.copy_(linear.bias.data.index_select(0, index))


def hidden_importance(net, batches) -> torch.Tensor:
    """``(D,)`` importance of the hidden channels on ``batches`` (the gate on every LayerNorm's output)."""
    device = next(net.parameters()).device
    scores = torch.zeros(net.config.hidden_size, device=device)
    norms = [m for m in net.model.modules()  # those on the stream (not ELECTRA's narrower embedding norm)
             if isinstance(m, torch.nn.LayerNorm) and m.normalized_shape[-1] == net.config.hidden_size]
    largest, was_training = net.space.largest(), net.training
    net.eval()
    try:
        for x in batches:
            outs: list[torch.Tensor] = []
            handles = [norm.register_forward_hook(lambda m, a, out: outs.append(out)) for norm in norms]
            try:
                with torch.enable_grad():
                    logits = net(net.prepare_input(x.to(device), largest), largest)
                    loss = F.cross_entropy(logits.float(), logits.argmax(-1).detach(), reduction="sum")
                    grads = torch.autograd.grad(loss, outs)
            finally:
                for handle in handles:
                    handle.remove()
            gate = sum((g * y).detach().float().flatten(1, -2).sum(1) for g, y in zip(grads, outs))  # (B, D)
            scores += gate.square().sum(0)
    finally:
        net.train(was_training)
    return scores


@torch.no_grad()
def sort_hidden(net, batches) -> torch.Tensor:
    """Reorder the hidden channels by :func:`hidden_importance` (descending); returns the permutation ``(D,)``."""
    perm = torch.argsort(hidden_importance(net, batches), descending=True, stable=True)
    permute_hidden(net, perm)
    return perm


@torch.no_grad()
def permute_hidden(net, perm: torch.Tensor) -> None:
    """Move hidden channel ``perm[k]`` to position ``k`` in every tensor on the residual stream, in place."""
    places = [(net.model, net.outside_axes)]
    places += [(layer.layer, layer_axes(layer.layer, net.layout)) for layer in net.layers]
    for owner, axes in places:
        for name, dims in axes.items():
            param = owner.get_parameter(name)
            for dim in dims:
                param.data.copy_(param.data.index_select(dim, perm.to(param.device)))

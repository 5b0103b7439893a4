"""The order of MLP channels in the ``llm_lora`` supernet: sorted once by importance, saved, re-applied.

Leading slices of an MLP keep its first channels, so before training each layer's channels are
sorted by importance, most important first. Importance of channel ``j`` of layer ``i``:

    mean over tokens of |act(gate_j(x)) up_j(x)|  *  ||W_down[:, j]||_2

(the magnitude of its contribution to the layer's output), measured with the largest arch. The
reordering is exact: rows of gate/up, columns of down and their adapters move together, so the
full-width model computes the same function. The order is the supernet's ``mlp_order`` buffer.
"""
from __future__ import annotations

import torch

MLP_IN, MLP_OUT = ("gate_proj", "up_proj"), "down_proj"


@torch.no_grad()
def sort_channels(supernet, batches) -> None:
    """Reorder every layer's MLP channels by importance on ``batches`` of token ids (largest arch)."""
    cfg = supernet.config
    sums = torch.zeros(cfg.num_layers, cfg.intermediate_size, device=supernet.mlp_order.device)

    def probe(i):
        def record(module, args):
            sums[i] += args[0].abs().float().sum(dim=(0, 1))  # down_proj's input (B, T, I)
        return record
    handles = [layer.projection(MLP_OUT).register_forward_pre_hook(probe(i)) for i, layer in enumerate(supernet.layers)]
    try:
        largest = supernet.space.largest()
        for ids in batches:
            supernet(ids.to(supernet.mlp_order.device), largest)
    finally:
        for handle in handles:
            handle.remove()
    norms = torch.stack([layer.projection(MLP_OUT).base_layer.weight.float().norm(dim=0) for layer in supernet.layers])
    ranking = torch.argsort(sums * norms, dim=1, descending=True, stable=True)  # positions in the current order
    permute(supernet, ranking, adapters=True)
    supernet.mlp_order.copy_(torch.gather(supernet.mlp_order, 1, ranking))


@torch.no_grad()
def apply_order(supernet, saved: torch.Tensor) -> None:
    """Put the in-memory base weights in the ``saved`` channel order (adapters are loaded in it)."""
    new = saved.to(supernet.mlp_order.device)
    back = torch.argsort(supernet.mlp_order, dim=1)  # current position of each original channel
    permute(supernet, torch.gather(back, 1, new), adapters=False)
    supernet.mlp_order.copy_(new)


def permute(supernet, perm: torch.Tensor, adapters: bool) -> None:
    """Move channel ``perm[i][k]`` of layer ``i`` to position ``k`` (base weights; adapters too if asked).

    In place, one tensor at a time: a base loaded from safetensors may live in a memory-mapped file, and
    new tensors would leave the file's pages mapped beside them (two copies of the MLP weights)."""
    for i, layer in enumerate(supernet.layers):
        p = perm[i].to(supernet.mlp_order.device)
        if torch.equal(p, torch.arange(len(p), device=p.device)):
            continue
        tensors = [(t, 0) for name in MLP_IN for t in (layer.projection(name).base_layer.weight,
                                                       layer.projection(name).base_layer.bias) if t is not None]
        tensors.append((layer.projection(MLP_OUT).base_layer.weight, 1))
        if adapters:
            tensors += [(layer.projection(name).lora_B, 0) for name in MLP_IN]
            tensors.append((layer.projection(MLP_OUT).lora_A, 1))
        for tensor, dim in tensors:
            tensor.data.copy_(tensor.data.index_select(dim, p))

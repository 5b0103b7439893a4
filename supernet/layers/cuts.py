"""Every active tensor of one subnet cut from its parameter by one autograd node.

Cut one by one (:func:`~supernet.layers.elastic.window`), each parameter a subnet uses in part adds
a view node to the graph, and each of those nodes' backward allocates and fills a gradient of the
parameter's full size. A subnet of a small supernet cuts about 80 parameters per step, and these
nodes are most of its cost over its static twin (``benchmarks/bench_elastic.py``). :func:`cut_together`
makes the same views in one node; its backward writes every window's gradient into one zero
buffer with one ``_foreach_copy_`` and gives each parameter its full-size part of that buffer.
The values, and so the gradients, are those of :func:`window`, bit for bit.

A module that can be cut this way has ``cuts(*config)``: ``{name: Cut}`` or nested mappings of them,
keyed by the path of each tensor's attribute (``{"se": {"reduce": {"weight": cut}}}`` for
``module.se.reduce.weight``). :func:`cut_plan` flattens it once per config and module.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .elastic import Cut, is_whole, window, window_geometry


class CutPlan:
    """``module.cuts(*config)`` flattened: each tensor's path, cut and (for a joint cut) its window's
    geometry. It holds while each tensor is still its module's attribute with the same strides,
    storage offset and ``requires_grad`` (:meth:`holds`), so ``.to()``, assignment or freezing make
    a new plan."""

    def __init__(self, module: nn.Module, cuts: Mapping):
        self.leaves: list[tuple[tuple[str, ...], Cut]] = []
        _flatten(cuts, (), self.leaves)
        self.owners = [_holder(module.get_submodule(".".join(path[:-1])), path[-1]) for path, _ in self.leaves]
        self.signature = [(t.stride(), t.storage_offset(), t.requires_grad) for _, (t, _, _) in self.leaves]
        self.geometries = [window_geometry(*cut) if _joint(cut) else None for _, cut in self.leaves]

    def holds(self) -> bool:
        for holder, (path, (t, _, _)), (stride, offset, requires_grad) in zip(self.owners, self.leaves, self.signature):
            if (holder.get(path[-1]) is not t or t.stride() != stride or t.storage_offset() != offset
                    or t.requires_grad != requires_grad):
                return False
        return True


def _holder(module: nn.Module, name: str) -> dict:
    """The dict of ``module`` that holds its tensor attribute ``name`` (parameters or buffers)."""
    return module._parameters if name in module._parameters else module._buffers


def cut_plan(module: nn.Module, *config) -> CutPlan:
    """``module``'s :class:`CutPlan` for ``config``, kept on the module while it holds."""
    plans = module.__dict__.setdefault("_cut_plans", {})
    plan = plans.get(config)
    if plan is None or not plan.holds():
        plan = plans[config] = CutPlan(module, module.cuts(*config))
    return plan


def cut_together(plans: Sequence[CutPlan]) -> list[dict]:
    """For each plan, its cuts as nested ``{name: window(*cut)}`` mappings; the windows of all
    parameters that need a gradient come from one autograd node (in grad mode, when they share a
    dtype and device; otherwise each is cut on its own)."""
    results, slots, tensors, geometries = [], [], [], []
    grad = torch.is_grad_enabled()
    for plan in plans:
        out: dict = {}
        for (path, cut), geometry in zip(plan.leaves, plan.geometries):
            target = out
            for key in path[:-1]:
                target = target.setdefault(key, {})
            if grad and geometry is not None:
                slots.append((target, path[-1], cut))
                tensors.append(cut[0])
                geometries.append(geometry)
            else:
                target[path[-1]] = window(*cut)
        results.append(out)
    if tensors and len({(t.dtype, t.device) for t in tensors}) == 1:
        views = _CutTogether.apply(tuple(geometries), *tensors)
    else:
        views = [window(*cut) for _, _, cut in slots]
    for (target, name, _), view in zip(slots, views):
        target[name] = view
    return results


def _flatten(tree: Mapping, path: tuple[str, ...], leaves: list) -> None:
    for name, value in tree.items():
        if isinstance(value, Mapping):
            _flatten(value, path + (name,), leaves)
        else:
            leaves.append((path + (name,), value))


def _joint(cut: Cut) -> bool:
    """Whether the cut goes in the joint node: a view of a parameter that needs a gradient and fills its
    storage span exactly once (contiguous or channels-last), so a zero buffer of ``numel`` entries can
    take its gradient with its strides."""
    t, index, unit_axis = cut
    dense = t.is_contiguous() or (t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last))
    return t.requires_grad and dense and not is_whole(index, unit_axis)


class _CutTogether(torch.autograd.Function):
    """``forward(geometries, *tensors)``: ``tensors[i].as_strided(*geometries[i])`` for each ``i``.
    Backward: one zero buffer of ``sum(numel)`` entries; tensor ``i``'s gradient is its part of the
    buffer, shaped and strided as the tensor, with the window's gradient copied into its place."""

    @staticmethod
    def forward(ctx, geometries, *tensors):
        ctx.geometries = geometries
        ctx.layouts = [(t.shape, t.stride(), t.storage_offset(), t.numel()) for t in tensors]
        ctx.dtype, ctx.device = tensors[0].dtype, tensors[0].device
        return tuple(t.as_strided(*geometry) for t, geometry in zip(tensors, geometries))

    @staticmethod
    def backward(ctx, *grads):
        buffer = torch.zeros(sum(n for *_, n in ctx.layouts), dtype=ctx.dtype, device=ctx.device)
        full, windows, sources, start = [], [], [], 0
        for (shape, stride, base, n), (sizes, strides, offset), grad in zip(ctx.layouts, ctx.geometries, grads):
            full.append(buffer.as_strided(shape, stride, start))
            if grad is not None:
                windows.append(buffer.as_strided(sizes, strides, start + offset - base))
                sources.append(grad)
            start += n
        if windows:
            torch._foreach_copy_(windows, sources)
        return (None, *full)

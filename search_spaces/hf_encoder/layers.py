"""The elastic part of the ``hf_encoder`` supernet: each library layer run on sliced weights.

Each layer of the Hugging Face model is held by an :class:`ElasticEncoderLayer`, which receives the
arch's cuts as a keyword of the model's forward (``model(..., subnet=cuts)``: transformers hands
unknown keywords down to every layer) and runs the library's layer with sliced tensors
(``torch.func.functional_call``), or skips it. Embeddings, attention (eager or SDPA), masks and
gradient checkpointing stay the library's.

:func:`cut_tensors` is the one slicing rule, shared by the forward and the export. A layer kept at
``h`` heads of width ``d`` and MLP width ``w`` uses

    q, k, v:  W[:h d, :], b[:h d]        o:   W[:, :h d]
    fc1:      W[:w, :],   b[:w]          fc2: W[:, :w]

(the library's attention reshapes q/k/v by ``head_dim``, so fewer rows are fewer whole heads).

An arch with hidden size ``D' < D`` (the residual stream's width) keeps the leading ``D'`` channels of
every tensor on the stream, in the layers and outside them: :func:`layer_axes` and :func:`outside_axes` name
those axes
(input columns of q, k, v, fc1; output rows and biases of o, fc2; every LayerNorm; the embedding tables'
columns; the pooler's rows and columns, the classifier's columns; ViT's patch projection and its
tokens), so slicing (:func:`cut_tensors`, :func:`outside_tensors`) and the importance reorder
(:mod:`.order`) use one map. LayerNorms normalise over the channels kept (:class:`SlicedLayerNorm`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..hf_compat import EncoderLayout, GradientCheckpointingLayer

ROWS, COLUMNS = ("query", "key", "value", "fc1"), ("out", "fc2")


@dataclass(frozen=True)
class LayerCut:
    """One layer of an arch: attention heads kept, of ``head_dim`` channels each, MLP channels kept, and the
    hidden size (None: the model's)."""

    heads: int
    head_dim: int
    width: int
    hidden: int | None = None

    def sizes(self) -> dict[str, int]:
        """Rows (q, k, v, fc1) or columns (o, fc2) kept per projection."""
        hd = self.heads * self.head_dim
        return {"query": hd, "key": hd, "value": hd, "out": hd, "fc1": self.width, "fc2": self.width}


def cut_tensors(layer: nn.Module, layout: EncoderLayout, cut: LayerCut) -> dict[str, torch.Tensor]:
    """The sliced weights and biases of ``layer`` (a library layer) by parameter name: leading rows of q, k, v
    and fc1 (weight and bias), leading columns of o and fc2 (weight; their bias whole); with ``cut.hidden``,
    every residual axis (:func:`layer_axes`) narrowed to it too. Views."""
    tensors, paths = {}, layout.projections()
    for role, size in cut.sizes().items():
        linear = layer.get_submodule(paths[role])
        if role in ROWS:
            tensors[f"{paths[role]}.weight"] = linear.weight[:size]
            if linear.bias is not None:
                tensors[f"{paths[role]}.bias"] = linear.bias[:size]
        else:
            tensors[f"{paths[role]}.weight"] = linear.weight[:, :size]
    if cut.hidden is not None:
        for name, axes in layer_axes(layer, layout).items():
            tensors[name] = narrowed(tensors.get(name, layer.get_parameter(name)), axes, cut.hidden)
    return tensors


def narrowed(tensor: torch.Tensor, axes: tuple[int, ...], size: int) -> torch.Tensor:
    """``tensor`` with each of ``axes`` cut to its leading ``size`` entries (a view)."""
    for axis in axes:
        tensor = tensor.narrow(axis, 0, size)
    return tensor


def layer_axes(layer: nn.Module, layout: EncoderLayout) -> dict[str, tuple[int, ...]]:
    """Parameter name -> its axes along the residual stream (the hidden size) in a library layer: q, k, v, fc1
    weight columns (1); o, fc2 weight rows and bias (0); LayerNorms (0)."""
    axes: dict[str, tuple[int, ...]] = {}
    for role, path in layout.projections().items():
        axes[f"{path}.weight"] = (0,) if role in COLUMNS else (1,)
        if role in COLUMNS and layer.get_submodule(path).bias is not None:
            axes[f"{path}.bias"] = (0,)
    for name, sub in layer.named_modules():
        if isinstance(sub, nn.LayerNorm):
            axes.update({f"{name}.{p}": (0,) for p, _ in sub.named_parameters(recurse=False)})
    return axes


def outside_axes(model: nn.Module, layout: EncoderLayout) -> dict[str, tuple[int, ...]]:
    """Parameter name -> its axes along the residual stream, for the model outside its layers: LayerNorms (0),
    embedding tables' columns (1), linears' columns (1) and, but for the classifier, rows and bias (0: BERT's
    pooler, RoBERTa's classifier.dense), convolutions' output channels (0: ViT's patch projection), any other
    parameter's last axis (ViT's class and distillation tokens, position embeddings); of those, only axes of the
    hidden size's length (ELECTRA's embeddings of another width keep theirs, its ``embeddings_project`` narrows
    its output). Fixed by the model's structure: computed once (:class:`.model.HfEncoderSupernet`)."""
    hidden, axes = model.config.hidden_size, {}
    for name, sub in model.named_modules():
        if name == layout.layers or name.startswith(layout.layers + "."):
            continue
        for p, param in sub.named_parameters(recurse=False):
            found = tuple(a for a in _param_axes(sub, p, param, name == layout.classifier) if param.shape[a] == hidden)
            if found:
                axes[f"{name}.{p}" if name else p] = found
    return axes


def _param_axes(module: nn.Module, name: str, param: torch.Tensor, classifier: bool) -> tuple[int, ...]:
    """The candidate residual axes of ``module``'s parameter ``name`` by the module's kind."""
    if isinstance(module, nn.LayerNorm):
        return (0,)
    if isinstance(module, nn.Embedding):
        return (1,)
    if isinstance(module, nn.Linear):
        if name == "bias":
            return () if classifier else (0,)
        return (1,) if classifier else (0, 1)
    if isinstance(module, nn.Conv2d):
        return (0,)
    return (param.dim() - 1,)


def outside_tensors(model: nn.Module, axes: dict[str, tuple[int, ...]], hidden: int) -> dict[str, torch.Tensor]:
    """The model's parameters named in ``axes`` (:func:`outside_axes`) narrowed to ``hidden`` channels (views)."""
    return {name: narrowed(model.get_parameter(name), dims, hidden) for name, dims in axes.items()}


class SlicedLayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` over its input's last axis, however wide: run with a sliced weight and bias
    (``functional_call``), it normalises the hidden channels a subnet keeps. Same parameters and state dict."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps)


def slice_layer_norms(model: nn.Module) -> None:
    """Make every ``nn.LayerNorm`` of ``model`` a :class:`SlicedLayerNorm`, in place."""
    for module in model.modules():
        if type(module) is nn.LayerNorm:
            module.__class__ = SlicedLayerNorm


class ElasticEncoderLayer(GradientCheckpointingLayer):
    """A library layer (``.layer``) run at the cut its ``subnet`` keyword gives for ``index``.

    ``subnet``: a tuple with one :class:`LayerCut` (or None: skipped) per layer; absent, the layer runs
    whole. A skipped layer returns its input (depth: trailing layers)."""

    def __init__(self, layer: nn.Module, index: int, layout: EncoderLayout):
        super().__init__()
        self.layer, self.index, self.layout = layer, index, layout
        self.layer.gradient_checkpointing = False  # this module is the checkpointed unit

    def forward(self, hidden_states: torch.Tensor, *args, subnet: tuple | None = None, **kwargs) -> torch.Tensor:
        if subnet is None:
            return self.layer(hidden_states, *args, **kwargs)
        cut = subnet[self.index]
        if cut is None:
            return hidden_states  # (B, T, H): a skipped layer
        tensors = cut_tensors(self.layer, self.layout, cut)
        return functional_call(self.layer, tensors, (hidden_states, *args), kwargs, strict=False)  # (B, T, H)

    def linear(self, role: str) -> nn.Linear:
        """The library linear of ``role`` (query, key, value, out, fc1, fc2)."""
        return self.layer.get_submodule(self.layout.projections()[role])


def wrap_layers(layers: nn.ModuleList, layout: EncoderLayout) -> None:
    """Put every layer of ``layers`` inside an :class:`ElasticEncoderLayer`."""
    for i, layer in enumerate(layers):
        layers[i] = ElasticEncoderLayer(layer, i, layout)

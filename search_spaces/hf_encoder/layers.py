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
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from ..hf_compat import EncoderLayout, GradientCheckpointingLayer

ROWS, COLUMNS = ("query", "key", "value", "fc1"), ("out", "fc2")


@dataclass(frozen=True)
class LayerCut:
    """One layer of an arch: attention heads kept, of ``head_dim`` channels each, and MLP channels kept."""

    heads: int
    head_dim: int
    width: int

    def sizes(self) -> dict[str, int]:
        """Rows (q, k, v, fc1) or columns (o, fc2) kept per projection."""
        hd = self.heads * self.head_dim
        return {"query": hd, "key": hd, "value": hd, "out": hd, "fc1": self.width, "fc2": self.width}


def cut_tensors(layer: nn.Module, layout: EncoderLayout, cut: LayerCut) -> dict[str, torch.Tensor]:
    """The sliced weights and biases of ``layer`` (a library layer) by parameter name: leading rows of q, k, v
    and fc1 (weight and bias), leading columns of o and fc2 (weight; their bias whole). Views."""
    tensors, paths = {}, layout.projections()
    for role, size in cut.sizes().items():
        linear = layer.get_submodule(paths[role])
        if role in ROWS:
            tensors[f"{paths[role]}.weight"] = linear.weight[:size]
            if linear.bias is not None:
                tensors[f"{paths[role]}.bias"] = linear.bias[:size]
        else:
            tensors[f"{paths[role]}.weight"] = linear.weight[:, :size]
    return tensors


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

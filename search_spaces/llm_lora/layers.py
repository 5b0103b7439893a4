"""The elastic parts of the ``llm_lora`` supernet, inside the Hugging Face model's own module tree.

Each q/k/v/o and gate/up/down ``nn.Linear`` of every decoder layer becomes a
:class:`~supernet.layers.lora.LoraLinear` (the PEFT pattern). Each decoder layer is held by an
:class:`ElasticDecoderLayer`, which receives the arch's cut of that layer as a keyword of the
model's forward (``model(input_ids=..., subnet=cuts)``: transformers hands unknown keywords down
to every decoder layer) and runs the library's layer with the sliced tensors
(``torch.func.functional_call``), or skips it. Attention, positions, masks (sliding windows
included), caches and gradient checkpointing stay the library's.

Gradient checkpointing: the :class:`ElasticDecoderLayer` is the checkpointed unit (it is a
transformers ``GradientCheckpointingLayer``; the library layer inside it is not checkpointed
again), so the backward's recompute re-runs it with the same keyword, hence the same slices.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from supernet.layers.lora import LoraLinear, LoraSlice, sliced_tensors

from ..hf_compat import GradientCheckpointingLayer, decoder_layers
from ..hf_compat import set_checkpointing as hf_set_checkpointing

from .config import ATTN, MLP


@dataclass(frozen=True)
class LayerCut:
    """One decoder layer of an arch: LoRA ranks of the attention and MLP projections, MLP channels kept."""

    attn_rank: int
    mlp_rank: int
    width: int

    def slices(self) -> dict[str, LoraSlice]:
        """The slice of each adapted projection: attention at ``attn_rank``; gate/up keep ``width`` output rows,
        down ``width`` input columns, at ``mlp_rank``."""
        cuts = {name: LoraSlice(self.attn_rank) for name in ATTN}
        cuts.update(gate_proj=LoraSlice(self.mlp_rank, out=self.width), up_proj=LoraSlice(self.mlp_rank, out=self.width),
                    down_proj=LoraSlice(self.mlp_rank, inp=self.width))
        return cuts


def owner_name(name: str) -> str:
    """``self_attn`` or ``mlp``: the submodule of a decoder layer that holds projection ``name``."""
    return "self_attn" if name in ATTN else "mlp"


class ElasticDecoderLayer(GradientCheckpointingLayer):
    """A library decoder layer (``.layer``) run at the cut its ``subnet`` keyword gives for ``index``.

    ``subnet``: a tuple with one :class:`LayerCut` (or None: skipped) per layer; absent, the layer runs
    whole (every adapter at its largest rank). A skipped layer returns its input (depth: trailing layers).
    """

    def __init__(self, layer: nn.Module, index: int):
        super().__init__()
        self.layer, self.index = layer, index
        self.layer.gradient_checkpointing = False  # this module is the checkpointed unit

    def forward(self, hidden_states: torch.Tensor, *args, subnet: tuple | None = None, **kwargs) -> torch.Tensor:
        if subnet is None:
            return self.layer(hidden_states, *args, **kwargs)
        cut = subnet[self.index]
        if cut is None:
            return hidden_states  # (B, T, H): a skipped layer
        return functional_call(self.layer, self.tensors(cut), (hidden_states, *args), kwargs, strict=False)

    def tensors(self, cut: LayerCut) -> dict[str, torch.Tensor]:
        """The sliced base weights and adapters of every adapted projection, by name inside ``.layer``."""
        tensors = {}
        for name, piece in cut.slices().items():
            prefix = f"{owner_name(name)}.{name}"
            tensors.update(sliced_tensors(self.layer.get_submodule(prefix), piece, prefix + "."))
        return tensors

    def projection(self, name: str) -> LoraLinear:
        return self.layer.get_submodule(f"{owner_name(name)}.{name}")


def add_adapters(model: nn.Module, rank: int, scaling: float) -> None:
    """Wrap every projection of ``model`` (a causal LM) in a :class:`LoraLinear` of ``rank`` (fp32) and every
    decoder layer in an :class:`ElasticDecoderLayer`; the base stays frozen."""
    model.requires_grad_(False)
    layers = decoder_layers(model)
    for i, layer in enumerate(layers):
        for name in ATTN + MLP:
            owner = getattr(layer, owner_name(name))
            setattr(owner, name, LoraLinear(getattr(owner, name), rank, scaling))
        layers[i] = ElasticDecoderLayer(layer, i)


def set_checkpointing(model: nn.Module, enable: bool) -> None:
    """Gradient checkpointing of ``model``'s decoder layers (non-reentrant), the :class:`ElasticDecoderLayer`
    being the checkpointed unit and the library layer inside it not again."""
    hf_set_checkpointing(model, enable, ElasticDecoderLayer)

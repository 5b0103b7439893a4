"""The ``hf_encoder`` supernet: the user's pretrained Hugging Face classifier, every layer elastic.

``forward(x, arch)`` is the library model's forward; each layer is an
:class:`~search_spaces.hf_encoder.layers.ElasticEncoderLayer` that runs the library layer on the
arch's slices (:func:`~search_spaces.hf_encoder.layers.cut_tensors`). :meth:`extract` copies the
same slices into a physically smaller stock model (:meth:`subnet_tensors`). All weights train
(full fine-tuning, DynaBERT's choice); the state dict is the whole model, in the importance
order set once by :meth:`before_training` (:mod:`.order`).

Distillation from the pretrained model (``teacher="pretrained"``, DynaBERT's fixed teacher): the
model as loaded, frozen (:meth:`teacher`); every arch of the step distils from it. ``"inplace"``:
the engine's sandwich, the largest on the labels and the others distilled from it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from supernet.core.arch import Arch

from ..hf_compat import encoder_checkpointing, encoder_layers, encoder_layout, encoder_logits, encoder_subnet_config
from . import order
from .base import load_base
from .config import HfEncoderConfig
from .layers import (ElasticEncoderLayer, LayerCut, cut_tensors, outside_axes, outside_tensors, slice_layer_norms,
                     wrap_layers)
from .loader import build_subnet_model
from .space import HfEncoderSpace
from .static import EncoderClassifier


class HfEncoderSupernet(nn.Module):
    def __init__(self, config: HfEncoderConfig):
        super().__init__()
        self.model, config = load_base(config)
        self.config, self.space = config, HfEncoderSpace(config)
        self.layout = encoder_layout(config.model_type)
        wrap_layers(encoder_layers(self.model, self.layout), self.layout)
        self.outside_axes = outside_axes(self.model, self.layout)  # the hidden size's axes outside the layers
        if len(config.hiddens) > 1:
            slice_layer_norms(self.model)
        if config.gradient_checkpointing:
            encoder_checkpointing(self.model, self.layers, True)
        self.train()

    @property
    def layers(self) -> list[ElasticEncoderLayer]:
        return list(encoder_layers(self.model, self.layout))

    # -- the subnet's forward ----------------------------------------------------------------
    def prepare_input(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        """Text: token ids as they are. Images (values in [0, 1] or already normalised by the data): one channel
        repeated to the model's, resized (bilinear, antialiased) to ``image_size`` when the side differs."""
        c = self.config
        if c.kind == "text":
            return x.long()
        if x.shape[1] == 1 and c.channels > 1:
            x = x.expand(-1, c.channels, -1, -1)
        if tuple(x.shape[-2:]) != (c.image_size, c.image_size):
            x = F.interpolate(x.float(), size=(c.image_size, c.image_size), mode="bilinear", antialias=True,
                              align_corners=False)
        return x

    def preprocessing(self, arch: Arch) -> str:
        c = self.config
        if c.kind == "text":
            return f"Token ids of the model's tokenizer, {c.seq_len} per example, padded with id {c.pad_id}."
        how = "interpolated (bicubic)" if c.interpolate else "as trained"
        return (f"Images as the data gives them, one channel repeated to {c.channels}, resized to {c.image_size}x"
                f"{c.image_size} (bilinear); position embeddings {how}.")

    def cuts(self, arch: Arch) -> tuple[LayerCut | None, ...]:
        """The arch per layer: its :class:`LayerCut`, or None for a layer the depth drops. The ``j``-th kept
        layer (:meth:`HfEncoderConfig.kept_layers`) takes the arch's ``j``-th heads and MLP width."""
        c = self.config
        cuts: list[LayerCut | None] = [None] * c.num_layers
        hidden = self.narrower(arch)
        for j, i in enumerate(c.kept_layers(self.space.depth(arch))):
            cuts[i] = LayerCut(arch["heads"][j], c.head_dim, arch["mlp_width"][j], hidden)
        return tuple(cuts)

    def narrower(self, arch: Arch) -> int | None:
        """The arch's hidden size when below the model's, else None."""
        hidden = self.space.hidden(arch)
        return hidden if hidden < self.config.hidden_size else None

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        """``x -> logits (B, C)``: the library model's forward with the arch's cuts (and, at a smaller hidden
        size, with the weights outside the layers narrowed: :func:`.layers.outside_tensors`)."""
        c, model, hidden = self.config, self.model, self.narrower(arch)
        if hidden is not None:
            tensors = outside_tensors(self.model, self.outside_axes, hidden)
            model = lambda **kw: functional_call(self.model, tensors, (), kw, strict=False)  # noqa: E731
        return encoder_logits(model, x, c.kind, c.pad_id, c.interpolate, subnet=self.cuts(arch))

    # -- the static subnet -----------------------------------------------------------------
    def subnet_hf_config(self, arch: Arch):
        depth = self.space.depth(arch)
        return encoder_subnet_config(self.model.config, self.layout, depth, list(arch["heads"][:depth]),
                                     list(arch["mlp_width"][:depth]), self.space.hidden(arch))

    def subnet_tensors(self, arch: Arch) -> Iterator[tuple[str, torch.Tensor]]:
        """``(name, tensor)`` of the subnet's Hugging Face state dict: the layers the depth drops left out, the
        kept ones numbered ``0 .. depth - 1`` in order, each one's projections sliced by :func:`cut_tensors` (the
        forward's rule), the rest as they are or narrowed to the arch's hidden size (:func:`outside_tensors`)."""
        prefix, cuts, hidden = self.layout.layers + ".", self.cuts(arch), self.narrower(arch)
        outside = outside_tensors(self.model, self.outside_axes, hidden) if hidden is not None else {}
        kept = [(i, cut) for i, cut in enumerate(cuts) if cut is not None]
        for j, (i, cut) in enumerate(kept):
            layer = self.layers[i].layer
            sliced = cut_tensors(layer, self.layout, cut)
            for name, tensor in layer.state_dict(keep_vars=True).items():
                yield f"{prefix}{j}.{name}", sliced.get(name, tensor).detach()
        for name, tensor in self.model.state_dict(keep_vars=True).items():
            if not name.startswith(prefix):
                yield name, outside.get(name, tensor).detach()

    def extract(self, arch: Arch) -> nn.Module:
        """The physically smaller stock model of ``arch`` (fp32, CPU) as ``x -> logits``."""
        model = build_subnet_model(self.subnet_hf_config(arch))
        model.load_state_dict({k: v.float().cpu().clone() for k, v in self.subnet_tensors(arch)})
        c = self.config
        return EncoderClassifier(model.eval(), c.kind, c.pad_id, c.interpolate)

    def export_files(self, arch: Arch, folder: Path, final: Path) -> dict:
        """``model.safetensors`` + ``model.onnx`` (the static module) and ``hf/`` (a Hugging Face folder), see
        :mod:`.export`."""
        from .export import write_all
        return write_all(self, arch, folder)

    # -- counts ------------------------------------------------------------------------------
    def params(self, arch: Arch) -> int:
        from .costs import params
        return params(self, arch)

    def trainable_params(self, arch: Arch) -> int:
        from .costs import trainable_params
        return trainable_params(self, arch)

    def flops(self, arch: Arch) -> int:
        from .costs import flops
        return flops(self, arch)

    # -- once before training: the importance order ------------------------------------------
    def before_training(self, batches) -> None:
        """Heads and MLP channels of every layer in importance order (:func:`.order.sort_units`), then the hidden
        channels when the hidden size is elastic (:func:`.order.sort_hidden`); the teacher is the model as
        loaded (:meth:`teacher`), which no reorder changes."""
        batches = list(batches)
        order.sort_units(self, batches)
        if len(self.config.hiddens) > 1:
            order.sort_hidden(self, batches)

    def teacher(self):
        """The fixed teacher (``teacher="pretrained"``, DynaBERT's): ``x -> logits`` of the pretrained model as
        loaded from its folder (the importance order does not change its function), frozen, fp32, moved to the
        batch's device on first use; it is reloaded, not copied, so a resumed run distils from the same model.
        None for in-place distillation (the engine's sandwich: from the largest arch of the step)."""
        if self.config.teacher != "pretrained":
            return None
        c, largest, held = self.config, self.space.largest(), []

        @torch.no_grad()
        def teacher(x: torch.Tensor) -> torch.Tensor:
            if not held:
                model = load_base(c)[0].requires_grad_(False).to(x.device)
                held.append(EncoderClassifier(model, c.kind, c.pad_id, c.interpolate).eval())
            return held[0](self.prepare_input(x, largest))  # (B, C)
        return teacher

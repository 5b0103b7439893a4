"""The ``llm_lora`` supernet: a frozen Hugging Face causal LM with elastic LoRA inside its own module tree.

``forward(ids, arch)`` is the library model's forward: each q/k/v/o and gate/up/down projection
is a :class:`~supernet.layers.lora.LoraLinear` and each decoder layer an
:class:`~search_spaces.llm_lora.layers.ElasticDecoderLayer`, which slices its projections to the
arch's ranks and MLP width or skips the layer (depth). ``extract(arch)`` merges the same slices
into a physically smaller Hugging Face model; :meth:`merged_tensors` yields that model's tensors
one at a time, so exports are written shard by shard without a second copy of the base.
MLP channels are reordered once by importance (:meth:`before_training`, :mod:`.order`) so that
leading slices keep the most important ones; the order is a buffer saved with the adapters.
The state dict holds only the adapters and the order: the base is referenced by path and
identity hash (``config.model_hash``, :mod:`.identity`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, NamedTuple

import torch
from torch import nn

from supernet.core.arch import Arch
from supernet.layers.lora import lora_merged

from . import costs, order
from .base import load_base
from .config import ATTN, MLP, LlmLoraConfig
from .layers import ElasticDecoderLayer, LayerCut, add_adapters, owner_name, set_checkpointing
from .loader import CausalLMLogits, build_subnet_model, subnet_config
from .space import LlmLoraSpace


class LoadResult(NamedTuple):
    missing_keys: list
    unexpected_keys: list


LOGITS_BUDGET = 2**26  # float32 logits of one evaluation batch: 256 MiB


def eval_batch_for(seq_len: int, vocab_size: int) -> int:
    """Sequences per evaluation batch: ``max(1, min(500, 2**26 // (seq_len x vocab)))``, so that one batch's
    float32 logits take at most 256 MiB (500 sequences of a 150k vocabulary would take gigabytes)."""
    return max(1, min(500, LOGITS_BUDGET // (seq_len * vocab_size)))


class LlmLoraSupernet(nn.Module):
    def __init__(self, config: LlmLoraConfig):
        super().__init__()
        self.base, config = load_base(config)
        self.config, self.space = config, LlmLoraSpace(config)
        add_adapters(self.base, max(config.ranks), config.scaling)
        order_ = torch.arange(config.intermediate_size).repeat(config.num_layers, 1)
        # (L, I): position k of layer i holds base channel order[i, k]; the in-memory base weights are in this order
        self.register_buffer("mlp_order", order_)
        if config.gradient_checkpointing:
            set_checkpointing(self.base, True)

    @property
    def layers(self) -> list[ElasticDecoderLayer]:
        return list(self.base.model.layers)

    # -- the subnet's forward ----------------------------------------------------------------
    def prepare_input(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        """Token ids as they are (sequences of at most seq_len tokens)."""
        return x

    def preprocessing(self, arch: Arch) -> str:
        """What ``prepare_input`` does, for ``arch.json``."""
        return "Token ids as they are (sequences of at most seq_len tokens)."

    def cuts(self, arch: Arch) -> tuple[LayerCut | None, ...]:
        """The arch per decoder layer: its :class:`LayerCut`, or None beyond the arch's depth."""
        depth = self.space.depth(arch)
        return tuple(LayerCut(arch["attn_rank"][i], arch["mlp_rank"][i], arch["mlp_width"][i]) if i < depth else None
                     for i in range(self.config.num_layers))

    def forward(self, ids: torch.Tensor, arch: Arch) -> torch.Tensor:
        """``ids (B, T) -> logits (B, T, V)``: the library model's forward with the arch's cuts."""
        return self.base(input_ids=ids, use_cache=False, subnet=self.cuts(arch)).logits

    def eval_batch_size(self) -> int:
        """Sequences per evaluation batch (:func:`eval_batch_for` this model's sequence length and vocabulary)."""
        return eval_batch_for(self.config.seq_len, self.config.vocab_size)

    def subnet_view(self, arch: Arch) -> nn.Module:
        """``arch``'s subnet computed through the adapters (no merged copy of the base): what eval and search score."""
        return SubnetView(self, arch)

    # -- the static subnet -----------------------------------------------------------------
    def extract(self, arch: Arch) -> nn.Module:
        """The merged, physically smaller Hugging Face model of ``arch`` (fp32, CPU), as ``ids -> logits``."""
        model = build_subnet_model(self.subnet_hf_config(arch))
        state = {k: v.float().cpu() for k, v in self.merged_tensors(arch)}
        tied = bool(getattr(model.config, "tie_word_embeddings", False))
        missing, unexpected = model.load_state_dict(state, strict=not tied)
        if tied:  # the LM head is the embedding (left out of merged_tensors, as save_pretrained does)
            if unexpected or set(missing) - {"lm_head.weight"}:
                raise RuntimeError(f"merged state of {arch} does not fit the subnet: missing {missing}, "
                                   f"unexpected {unexpected}")
            model.tie_weights()
        return CausalLMLogits(model.eval())

    def subnet_hf_config(self, arch: Arch):
        """The Hugging Face config of ``arch``'s merged model (its depth and per-layer MLP widths)."""
        depth = self.space.depth(arch)
        return subnet_config(self.base.config, depth, list(arch["mlp_width"][:depth]))

    def merged_tensors(self, arch: Arch, merge: bool = True, dtype: torch.dtype | None = None
                       ) -> Iterator[tuple[str, torch.Tensor]]:
        """``(name, tensor)`` of the merged subnet's Hugging Face state dict, one at a time: adapters folded
        into the sliced projections (left out without ``merge``), MLP channels beyond the arch's widths and
        skipped layers removed, in ``dtype`` (default: the base's). Projections are new tensors; the rest
        are views of the base when the dtype is the same (a tied LM head is left out, as ``save_pretrained``
        does)."""
        tied = bool(getattr(self.base.config, "tie_word_embeddings", False))
        for name, tensor in self.base.state_dict(keep_vars=True).items():
            if not name.startswith("model.layers.") and not (tied and name == "lm_head.weight"):
                yield name, tensor.detach().to(dtype or tensor.dtype)
        for i, cut in enumerate(self.cuts(arch)):
            if cut is None:
                break
            yield from self._layer_tensors(i, cut, merge, dtype)

    def _layer_tensors(self, i: int, cut: LayerCut, merge: bool, dtype):
        layer, slices, prefix = self.layers[i], cut.slices(), f"model.layers.{i}."
        adapted = tuple(f"{owner_name(n)}.{n}." for n in slices)
        for name, tensor in layer.layer.state_dict(keep_vars=True).items():
            if not name.startswith(adapted):  # norms and any other weights of the layer, as they are
                yield prefix + name, tensor.detach().to(dtype or tensor.dtype)
        for name, piece in slices.items():
            weight, bias = lora_merged(layer.projection(name), piece, merge, dtype)
            yield f"{prefix}{owner_name(name)}.{name}.weight", weight
            if bias is not None:
                yield f"{prefix}{owner_name(name)}.{name}.bias", bias

    def export_files(self, arch: Arch, folder: Path, final: Path) -> dict:
        """Write ``merged/`` and ``peft/`` into ``folder``, which becomes ``final`` (see
        :mod:`search_spaces.llm_lora.export`); returns what was written."""
        from .export import write_merged, write_peft
        write_merged(self, arch, folder / "merged")
        base = write_peft(self, arch, folder, final)
        return {"format": "hf-causal-lm", "merged": "merged", "peft": "peft", "peft_base": str(base)}

    # -- exact counts (see :mod:`.costs`) ----------------------------------------------------------
    def params(self, arch: Arch) -> int:
        return costs.params(self, arch)

    def flops(self, arch: Arch) -> int:
        return costs.flops(self, arch)

    def trainable_params(self, arch: Arch) -> int:
        return costs.trainable_params(self, arch)

    # -- channel order ---------------------------------------------------------------------------
    @torch.no_grad()
    def before_training(self, batches) -> None:
        """Sort each layer's MLP channels by importance on ``batches`` of token ids (:func:`.order.sort_channels`)."""
        order.sort_channels(self, batches)

    # -- adapters-only state ----------------------------------------------------------------------
    def adapters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """``("lora.{i}.{name}.A" | ".B", parameter)`` of every adapter: the checkpoint's names."""
        for i, layer in enumerate(self.layers):
            for name in ATTN + MLP:
                proj = layer.projection(name)
                yield f"lora.{i}.{name}.A", proj.lora_A
                yield f"lora.{i}.{name}.B", proj.lora_B

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        """Adapters and channel order only; the frozen base is referenced by ``config.model`` and its hash."""
        state = {} if destination is None else destination
        for name, param in self.adapters():
            state[prefix + name] = param if keep_vars else param.detach()
        state[prefix + "mlp_order"] = self.mlp_order if keep_vars else self.mlp_order.detach()
        return state

    @torch.no_grad()
    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        """Load adapters and channel order; the in-memory base is permuted to the loaded order."""
        if "mlp_order" in state:
            order.apply_order(self, state["mlp_order"])
        own = dict(self.adapters())
        for name, value in state.items():
            if name in own:
                own[name].copy_(value)
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own) - {"mlp_order"})
        if strict and (missing or unexpected):
            raise RuntimeError(f"adapter state mismatch: missing {missing[:3]}, unexpected {unexpected[:3]}")
        return LoadResult(missing, unexpected)


class SubnetView(nn.Module):
    """``ids -> logits`` of one arch, computed by the supernet itself (shares its weights; nothing is copied)."""

    def __init__(self, supernet: LlmLoraSupernet, arch: Arch):
        super().__init__()
        self.supernet, self.arch = supernet, arch

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.supernet(ids, self.arch)  # (B, T, V)

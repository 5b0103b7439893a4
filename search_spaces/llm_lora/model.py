"""The ``llm_lora`` supernet: a frozen Hugging Face causal LM plus the largest LoRA adapters.

``forward(ids, arch)`` runs the decoder stack with each layer's active adapters and MLP
width (:mod:`supernet.layers.lora` slices), the first ``depth`` layers only; ``extract(arch)``
merges the same slices into a physically smaller Hugging Face model. MLP channels are
reordered once by importance (:meth:`before_training`, the contract's hook) so that leading slices keep the most
important ones; the order is a buffer saved with the adapters. The state dict holds only
the adapters and the order: the base is referenced by path and hash (``config.model_hash``).
"""
from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from supernet.core.arch import Arch
from supernet.core.errors import SupernetError
from supernet.layers.lora import LoraPair, LoraSlice, lora_forward, lora_merged

from .config import ATTN, MLP, LlmLoraConfig, hf_config
from .loader import CausalLMLogits, build_subnet_model, subnet_config
from .space import LlmLoraSpace

BASE = "base."


def model_hash(folder: str) -> str:
    """SHA-256 over the folder's ``config.json`` and weight files (names and bytes), in name order."""
    digest = hashlib.sha256()
    files = sorted(p for p in Path(folder).iterdir()
                   if p.name == "config.json" or p.suffix in (".safetensors", ".bin"))
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def load_base(config: LlmLoraConfig) -> tuple[nn.Module, LlmLoraConfig]:
    """The frozen fp32 base model and the config with its hash filled in (checked when already set)."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    if config.model is None:
        torch.manual_seed(config.seed)
        base = AutoModelForCausalLM.from_config(hf_config(config), dtype=torch.float32)
    else:
        found = model_hash(config.model)
        if config.model_hash is not None and found != config.model_hash:
            raise SupernetError(f"the base model in {config.model!r} changed since this supernet was trained "
                                f"(hash {found[:12]} != {config.model_hash[:12]}); restore the original files")
        config = replace(config, model_hash=found)
        base = AutoModelForCausalLM.from_pretrained(config.model, dtype=torch.float32)
    base.requires_grad_(False)
    return base.eval(), config


class LlmLoraSupernet(nn.Module):
    def __init__(self, config: LlmLoraConfig):
        super().__init__()
        self.base, config = load_base(config)
        self.config, self.space = config, LlmLoraSpace(config)
        r = max(config.ranks)
        layers = self.base.model.layers
        self.lora = nn.ModuleList(nn.ModuleDict({name: LoraPair(getattr(_owner(layer, name), name).in_features,
                                                                getattr(_owner(layer, name), name).out_features, r)
                                                 for name in ATTN + MLP}) for layer in layers)
        order = torch.arange(config.intermediate_size).repeat(config.num_layers, 1)
        # (L, I): position k of layer i holds base channel order[i, k]; the in-memory base weights are in this order
        self.register_buffer("mlp_order", order)

    # -- the subnet's forward --------------------------------------------------------------
    def prepare_input(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        """Token ids as they are (sequences of at most seq_len tokens)."""
        return x

    def preprocessing(self, arch: Arch) -> str:
        """What ``prepare_input`` does, for ``arch.json``."""
        return "Token ids as they are (sequences of at most seq_len tokens)."

    def forward(self, ids: torch.Tensor, arch: Arch) -> torch.Tensor:
        h = self._stack(ids, arch)  # (B, T, H)
        return self.base.lm_head(self.base.model.norm(h))  # (B, T, V)

    def _stack(self, ids: torch.Tensor, arch: Arch, probe=None) -> torch.Tensor:
        inner = self.base.model
        h = inner.embed_tokens(ids)  # (B, T, H)
        positions = torch.arange(ids.shape[1], device=ids.device)[None]
        cos, sin = inner.rotary_emb(h, positions)
        for i in range(self.space.depth(arch)):
            layer = inner.layers[i]
            h = h + self._attention(i, layer.self_attn, layer.input_layernorm(h), cos, sin, arch)
            h = h + self._mlp(i, layer.mlp, layer.post_attention_layernorm(h), arch, probe)
        return h

    def _attention(self, i: int, attn: nn.Module, x: torch.Tensor, cos, sin, arch: Arch) -> torch.Tensor:
        b, t, _ = x.shape
        cut, s, pairs = LoraSlice(arch["attn_rank"][i]), self.config.scaling, self.lora[i]
        q, k, v = (lora_forward(x, getattr(attn, n), pairs[n], cut, s).view(b, t, -1, attn.head_dim).transpose(1, 2)
                   for n in ("q_proj", "k_proj", "v_proj"))  # (B, heads, T, D)
        q, k = q * cos[:, None] + _rotate_half(q) * sin[:, None], k * cos[:, None] + _rotate_half(k) * sin[:, None]
        out = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=attn.scaling,
                                                         enable_gqa=q.shape[1] != k.shape[1])
        out = out.transpose(1, 2).reshape(b, t, -1)  # (B, T, heads * D)
        return lora_forward(out, attn.o_proj, pairs["o_proj"], cut, s)

    def _mlp(self, i: int, mlp: nn.Module, x: torch.Tensor, arch: Arch, probe=None) -> torch.Tensor:
        rank, width, s, pairs = arch["mlp_rank"][i], arch["mlp_width"][i], self.config.scaling, self.lora[i]
        gate = lora_forward(x, mlp.gate_proj, pairs["gate_proj"], LoraSlice(rank, out=width), s)
        hidden = mlp.act_fn(gate) * lora_forward(x, mlp.up_proj, pairs["up_proj"], LoraSlice(rank, out=width), s)
        if probe is not None:
            probe(i, hidden)  # (B, T, width)
        return lora_forward(hidden, mlp.down_proj, pairs["down_proj"], LoraSlice(rank, inp=width), s)

    # -- the static subnet -----------------------------------------------------------------
    def extract(self, arch: Arch) -> nn.Module:
        """The merged, physically smaller Hugging Face model of ``arch`` (fp32, CPU), as ``ids -> logits``."""
        depth = self.space.depth(arch)
        widths = list(arch["mlp_width"][:depth])
        model = build_subnet_model(subnet_config(self.base.config, depth, widths))
        model.load_state_dict(self.merged_state(arch))
        return CausalLMLogits(model.eval())

    def merged_state(self, arch: Arch, merge: bool = True) -> dict[str, torch.Tensor]:
        """Hugging Face state dict of the merged subnet: adapters folded in (unless ``merge`` is False),
        MLP channels beyond the arch's widths and skipped layers removed."""
        state = {k: v.detach().float().cpu().clone() for k, v in self.base.state_dict().items()
                 if not k.startswith("model.layers.")}
        s = self.config.scaling if merge else 0.0
        for i in range(self.space.depth(arch)):
            layer, pairs, prefix = self.base.model.layers[i], self.lora[i], f"model.layers.{i}."
            width, cuts = arch["mlp_width"][i], {n: LoraSlice(arch["attn_rank"][i]) for n in ATTN}
            cuts.update(gate_proj=LoraSlice(arch["mlp_rank"][i], out=width),
                        up_proj=LoraSlice(arch["mlp_rank"][i], out=width),
                        down_proj=LoraSlice(arch["mlp_rank"][i], inp=width))
            for name, cut in cuts.items():
                owner = "self_attn" if name in ATTN else "mlp"
                weight, bias = lora_merged(getattr(_owner(layer, name), name), pairs[name], cut, s)
                state[f"{prefix}{owner}.{name}.weight"] = weight.cpu()
                if bias is not None:
                    state[f"{prefix}{owner}.{name}.bias"] = bias.cpu()
            for norm in ("input_layernorm", "post_attention_layernorm"):
                state[f"{prefix}{norm}.weight"] = getattr(layer, norm).weight.detach().float().cpu().clone()
        return state

    def export_files(self, arch: Arch, folder: Path, final: Path) -> dict:
        """Write ``merged/`` and ``peft/`` into ``folder``, which becomes ``final`` (see
        :mod:`search_spaces.llm_lora.export`); returns what was written."""
        from .export import write_merged, write_peft
        write_merged(self, arch, folder / "merged")
        base = write_peft(self, arch, folder, final)
        return {"format": "hf-causal-lm", "merged": "merged", "peft": "peft", "peft_base": str(base)}

    # -- exact counts ------------------------------------------------------------------------
    def params(self, arch: Arch) -> int:
        """Parameters of the merged subnet (tied embeddings counted once)."""
        c, depth = self.config, self.space.depth(arch)
        per_attn = sum(self._linear_params(self.base.model.layers[0], n) for n in ATTN)
        norms = 2 * c.hidden_size
        total = depth * (per_attn + norms) + sum(self._mlp_params(arch["mlp_width"][i]) for i in range(depth))
        embed = c.vocab_size * c.hidden_size
        return total + embed + c.hidden_size + (0 if c.tie_embeddings else embed)

    def flops(self, arch: Arch) -> int:
        """Multiply-adds of the merged subnet on one sequence of ``seq_len`` tokens: every linear layer
        (projections, MLP, LM head) and the attention products ``Q K^T`` and ``P V`` (causal SDPA computes
        the full ``T x T`` score matrix: ``2 T^2 heads D``)."""
        c, depth, t = self.config, self.space.depth(arch), self.config.seq_len
        layer0 = self.base.model.layers[0]
        attn = sum(_weight_numel(getattr(layer0.self_attn, n)) for n in ATTN)
        scores = 2 * t * t * c.num_heads * self._head_dim
        mlp = sum(3 * c.hidden_size * arch["mlp_width"][i] for i in range(depth))
        return depth * (t * attn + scores) + t * mlp + t * c.hidden_size * c.vocab_size

    def trainable_params(self, arch: Arch) -> int:
        """Adapter parameters the arch uses: ``r (in + out)`` per adapted layer, MLP sides at its width."""
        c, total = self.config, 0
        for i in range(self.space.depth(arch)):
            layer, ra, rm, w = self.base.model.layers[i], arch["attn_rank"][i], arch["mlp_rank"][i], arch["mlp_width"][i]
            total += sum(ra * (getattr(layer.self_attn, n).in_features + getattr(layer.self_attn, n).out_features)
                         for n in ATTN)
            total += 2 * rm * (c.hidden_size + w) + rm * (w + c.hidden_size)
        return total

    @property
    def _head_dim(self) -> int:
        return self.base.model.layers[0].self_attn.head_dim

    def _linear_params(self, layer, name: str) -> int:
        linear = getattr(_owner(layer, name), name)
        return linear.weight.numel() + (0 if linear.bias is None else linear.bias.numel())

    def _mlp_params(self, width: int) -> int:
        mlp, h = self.base.model.layers[0].mlp, self.config.hidden_size
        bias = (2 * width + h) if mlp.gate_proj.bias is not None else 0
        return 3 * h * width + bias

    # -- channel order -------------------------------------------------------------------------
    @torch.no_grad()
    def before_training(self, batches) -> None:
        """Sort each layer's MLP channels by importance on ``batches`` of token ids, most important first.

        Importance of channel ``j``: ``mean_tokens |act(gate_j(x)) up_j(x)| * ||W_down[:, j]||_2``
        (the magnitude of its contribution to the layer's output), computed with the largest arch.
        Exact: the full-width model's outputs do not change (rows of gate/up, columns of down and
        their adapters move together).
        """
        sums = torch.zeros(self.config.num_layers, self.config.intermediate_size, device=self.mlp_order.device)
        largest = self.space.largest()

        def probe(i, hidden):
            sums[i] += hidden.abs().float().sum(dim=(0, 1))
        for ids in batches:
            self._stack(ids.to(self.mlp_order.device), largest, probe)
        norms = torch.stack([layer.mlp.down_proj.weight.float().norm(dim=0) for layer in self.base.model.layers])
        ranking = torch.argsort(sums * norms, dim=1, descending=True, stable=True)  # positions in the current order
        self._permute(ranking, adapters=True)
        self.mlp_order.copy_(torch.gather(self.mlp_order, 1, ranking))

    def _permute(self, perm: torch.Tensor, adapters: bool) -> None:
        """Move channel ``perm[i][k]`` of layer ``i`` to position ``k`` (base weights; adapters too if asked)."""
        for i, layer in enumerate(self.base.model.layers):
            p, mlp = perm[i].to(self.mlp_order.device), layer.mlp
            for name in ("gate_proj", "up_proj"):
                linear = getattr(mlp, name)
                linear.weight.data = linear.weight.data[p]
                if linear.bias is not None:
                    linear.bias.data = linear.bias.data[p]
                if adapters:
                    self.lora[i][name].B.data = self.lora[i][name].B.data[p]
            mlp.down_proj.weight.data = mlp.down_proj.weight.data[:, p]
            if adapters:
                self.lora[i]["down_proj"].A.data = self.lora[i]["down_proj"].A.data[:, p]

    # -- adapters-only state ----------------------------------------------------------------------
    def state_dict(self, *args, **kwargs):
        """Adapters and channel order only; the frozen base is referenced by ``config.model`` and its hash."""
        state = super().state_dict(*args, **kwargs)
        prefix = kwargs.get("prefix", args[1] if len(args) > 1 else "")
        for key in [k for k in state if k.startswith(prefix + BASE)]:
            del state[key]
        return state

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        """Load adapters and channel order; the in-memory base is permuted to the loaded order."""
        if "mlp_order" in state:
            new = state["mlp_order"].to(self.mlp_order.device)
            back = torch.argsort(self.mlp_order, dim=1)  # current position of each original channel
            self._permute(torch.gather(back, 1, new), adapters=False)
            self.mlp_order.copy_(new)
        result = super().load_state_dict(state, strict=False, assign=assign)
        missing = [k for k in result.missing_keys if not k.startswith(BASE)]
        if strict and (missing or result.unexpected_keys):
            raise RuntimeError(f"adapter state mismatch: missing {missing[:3]}, unexpected {result.unexpected_keys[:3]}")
        return result


def _owner(layer: nn.Module, name: str) -> nn.Module:
    return layer.self_attn if name in ATTN else layer.mlp


def _weight_numel(linear: nn.Linear) -> int:
    return linear.weight.numel()


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)

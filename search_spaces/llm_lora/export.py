"""Export an ``llm_lora`` subnet in two forms that stock libraries load with no project code.

``merged/``: the adapters merged into the base weights, MLP channels beyond the arch's widths
and skipped layers removed, saved with ``save_pretrained`` (plus the tokenizer). Uniform widths
load with ``AutoModelForCausalLM.from_pretrained``; per-layer widths with ``load_subnet.py``,
copied beside the weights (:mod:`search_spaces.llm_lora.loader`).

``peft/``: a standard PEFT LoRA adapter. Per-module ranks go through ``rank_pattern`` and
``alpha_pattern`` with ``alpha_m = alpha * r_m / r_max``, so PEFT's scaling ``alpha_m / r_m``
equals training's ``alpha / r_max``. For an arch at full width and depth over a model folder,
the adapter is for that base model itself (``base_model_name_or_path``; MLP channels put back
in the base's order). Otherwise ``peft-base/`` holds the pruned base (unmerged) it applies to.

Weights are written in the base's dtype, shard by shard (:func:`supernet.io.shards.write_shards`):
one merged tensor at a time beside the supernet, never a second copy of the base.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from supernet.core.arch import Arch
from supernet.io.shards import write_shards

from .config import ATTN, MLP

LOADER = Path(__file__).with_name("loader.py")
COMPAT = Path(__file__).parents[1] / "hf_compat.py"  # the loader imports it


def write_merged(supernet, arch: Arch, folder: Path) -> None:
    """``folder``: the merged, physically smaller model, its tokenizer and ``load_subnet.py``."""
    _write_model(supernet, arch, folder, merge=True)


def write_peft(supernet, arch: Arch, folder: Path, final: Path | None = None) -> Path:
    """``folder/peft`` (and ``folder/peft-base`` when the base must be pruned); returns the base's path
    as the adapter records it (under ``final``, the folder's path once written, when given)."""
    cfg, space = supernet.config, supernet.space
    depth = space.depth(arch)
    full = cfg.model is not None and depth == cfg.num_layers and min(arch["mlp_width"]) == cfg.intermediate_size
    if full:
        base, order = cfg.model, supernet.mlp_order.cpu()
    else:
        base, order = (final or folder) / "peft-base", None
        _write_pruned_base(supernet, arch, folder / "peft-base")
    adapter = folder / "peft"
    adapter.mkdir()
    state, ranks = _adapter_state(supernet, arch, order)
    r_max = max(cfg.ranks)
    from peft import LoraConfig
    LoraConfig(r=r_max, lora_alpha=cfg.lora_alpha, target_modules=list(ATTN + MLP), lora_dropout=0.0, bias="none",
               task_type="CAUSAL_LM", rank_pattern=ranks,
               alpha_pattern={m: cfg.lora_alpha * r / r_max for m, r in ranks.items()},
               base_model_name_or_path=str(base)).save_pretrained(adapter)
    save_file(state, str(adapter / "adapter_model.safetensors"))
    _save_tokenizer(cfg, adapter)
    return Path(base)


def _adapter_state(supernet, arch: Arch, order: torch.Tensor | None) -> tuple[dict, dict]:
    """PEFT's adapter tensors and per-module ranks; with ``order``, MLP channels back in the base's order."""
    state, ranks = {}, {}
    for i in range(supernet.space.depth(arch)):
        width = arch["mlp_width"][i]
        back = None if order is None else torch.argsort(order[i])
        for name in ATTN + MLP:
            owner = "self_attn" if name in ATTN else "mlp"
            module = f"model.layers.{i}.{owner}.{name}"
            rank = arch["attn_rank"][i] if name in ATTN else arch["mlp_rank"][i]
            proj = supernet.layers[i].projection(name)
            a, b = proj.lora_A.detach()[:rank].float().cpu(), proj.lora_B.detach()[:, :rank].float().cpu()
            if name in ("gate_proj", "up_proj"):
                b = b[:width] if back is None else b[back]
            elif name == "down_proj":
                a = a[:, :width] if back is None else a[:, back]
            state[f"base_model.model.{module}.lora_A.weight"] = a.contiguous()
            state[f"base_model.model.{module}.lora_B.weight"] = b.contiguous()
            ranks[module] = rank
    return state, ranks


def _write_pruned_base(supernet, arch: Arch, folder: Path) -> None:
    """The base with the arch's layers and MLP widths (importance order), adapters not merged."""
    _write_model(supernet, arch, folder, merge=False)


def _write_model(supernet, arch: Arch, folder: Path, merge: bool) -> None:
    """A Hugging Face model folder of ``arch`` (config, weight shards, tokenizer, ``load_subnet.py``)."""
    folder.mkdir(parents=True)
    supernet.subnet_hf_config(arch).save_pretrained(folder)
    if getattr(supernet.base, "generation_config", None) is not None:
        supernet.base.generation_config.save_pretrained(folder)
    write_shards(folder, lambda: supernet.merged_tensors(arch, merge=merge))
    _save_tokenizer(supernet.config, folder)
    shutil.copyfile(LOADER, folder / "load_subnet.py")
    shutil.copyfile(COMPAT, folder / "hf_compat.py")


def _save_tokenizer(cfg, folder: Path) -> None:
    if cfg.model is None:
        return  # a built-in random model has no tokenizer
    from transformers import AutoTokenizer
    AutoTokenizer.from_pretrained(cfg.model).save_pretrained(folder)

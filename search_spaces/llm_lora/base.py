"""The frozen base model of the ``llm_lora`` space: loaded in its dtype, checked against its recorded identity.

A folder's model loads with ``from_pretrained`` (sharded safetensors included), in ``base_dtype``;
a built-in variant builds a random Llama from the config's fields. A file that cannot be read, a
folder without tokenizer files and a model that changed since the supernet was trained are
refused with one line each.
"""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from supernet.core.errors import SupernetError
from supernet.core.placement import DTYPES

from .config import LlmLoraConfig, hf_config
from ..hf_identity import matches, model_hash, tokenizer_files

def load_base(config: LlmLoraConfig) -> tuple[nn.Module, LlmLoraConfig]:
    """The frozen base model (eval mode, ``config.base_dtype``) and the config with its identity hash filled in
    (checked when already set)."""
    from transformers import AutoModelForCausalLM
    from ..hf_compat import quiet_progress
    quiet_progress()
    dtype = DTYPES[config.base_dtype]
    if config.model is None:
        torch.manual_seed(config.seed)
        base = AutoModelForCausalLM.from_config(hf_config(config), dtype=dtype)
    else:
        config = replace(config, model_hash=checked_hash(config))
        try:
            base = AutoModelForCausalLM.from_pretrained(config.model, dtype=dtype)
        except Exception as exc:  # noqa: BLE001  (safetensors, torch and transformers raise many types)
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise SupernetError(f"cannot load the base model in {config.model!r} ({type(exc).__name__}: {why}); "
                                "its weight files are damaged or incomplete: save the model again "
                                "(save_pretrained)") from None
    base.requires_grad_(False)
    return base.eval(), config


def checked_hash(config: LlmLoraConfig) -> str:
    """The identity hash of ``config.model``; refused when the folder has no tokenizer or differs from the hash
    the supernet recorded."""
    if not tokenizer_files(config.model):
        raise SupernetError(f"--model {config.model!r} has no tokenizer files (tokenizer.json, tokenizer.model, "
                            "vocab.json, ...); save the tokenizer beside the model (tokenizer.save_pretrained)")
    if config.model_hash is None:
        return model_hash(config.model)
    same, found = matches(config.model, config.model_hash)
    if not same:
        raise SupernetError(f"the base model or tokenizer in {config.model!r} changed since this supernet was trained "
                            f"(hash {found[:15]} != {config.model_hash[:15]}); restore the original files")
    return config.model_hash

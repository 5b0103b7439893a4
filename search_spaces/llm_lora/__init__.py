"""``llm_lora``: elastic LoRA ranks, MLP widths and depth over a Hugging Face causal LM.

The base model (Llama, Mistral or Qwen2 module layout) is loaded from a local folder
(``--model PATH``, ``--base-dtype fp32|bf16|fp16``) and stays frozen; only the adapters train.
The supernet runs the library model's own forward with LoRA layers inside it (:mod:`.layers`).
Dimensions, per layer ``i``:

- ``attn_rank[i]``: LoRA rank of the attention projections (q, k, v, o);
- ``mlp_rank[i]``: LoRA rank of the MLP projections (gate, up, down);
- ``mlp_width[i]``: MLP intermediate channels kept (leading, after importance reordering);
- ``depth``: layers kept (trailing layers are skipped), when ``max_skip > 0``.

Layers beyond ``depth`` are inactive (their positions canonicalise to 0). The ``tiny`` and
``default`` variants build a random Llama model in memory (no files): for tests and examples.
This module registers the space without importing torch; its parts load on first use.
"""
from __future__ import annotations

from dataclasses import replace

from supernet.core.data_info import DataInfo
from supernet.core.errors import SupernetError
from supernet.core.registry import register_space

from .config import OPTIONS, LlmLoraConfig, with_model
from .options import LlmLoraOptions


def build_space(config: LlmLoraConfig):
    from .space import LlmLoraSpace
    return LlmLoraSpace(config)


def build_supernet(config: LlmLoraConfig):
    from .model import LlmLoraSupernet
    return LlmLoraSupernet(config)


def build_static(config: LlmLoraConfig, arch):
    from .space import build_static as build
    return build(config, arch)


def fit_data(config: LlmLoraConfig, info: DataInfo, options: LlmLoraOptions | None) -> LlmLoraConfig:
    """The variant over the base model of ``--model`` (when given), at ``--seq-len``; token data only."""
    options = options or LlmLoraOptions()
    if options.model is not None:
        config = with_model(config, options.model)
    if len(info.sample_shape) != 1 or info.max_token is None:
        raise SupernetError(f"llm_lora trains on token sequences (--data text:PATH with --model); the data "
                            f"{info.name!r} has inputs of shape {tuple(info.sample_shape)}")
    if info.max_token >= config.vocab_size:
        raise SupernetError(f"the data's token ids reach {info.max_token} but the model's vocabulary has "
                            f"{config.vocab_size} entries; tokenise with the model's own tokenizer (--model)")
    if config.max_positions is not None and options.seq_len > config.max_positions:
        raise SupernetError(f"--seq-len {options.seq_len} is above the model's max_position_embeddings "
                            f"({config.max_positions}); use --seq-len {config.max_positions} or less")
    return replace(config, **{name: getattr(options, name) for name in OPTIONS})


VARIANTS = {
    # Tests: a 2-layer random Llama (hidden 32), ranks {4, 8}, widths {32, 64}, depth {1, 2}.
    "tiny": LlmLoraConfig(),
    # LoNAS-style choices for a real model: ranks {8, 16, 24, 32}, MLP widths 50-100 %, up to 2 layers skipped.
    "default": LlmLoraConfig(vocab_size=256, hidden_size=64, num_layers=4, num_heads=4, num_kv_heads=2,
                             intermediate_size=192, seq_len=128, ranks=(8, 16, 24, 32),
                             width_fractions=(0.5, 0.625, 0.75, 0.875, 1.0), max_skip=2, lora_alpha=64.0),
}



# The language model's training schedule (measured by benchmarks/bench_llm.py against plain PEFT LoRA at equal
# steps, README): each step the largest arch on the labels plus the smallest distilled from it at half weight,
# no label smoothing. The four-pass sandwich reached 46 % of plain LoRA's improvement, this one 98 %.
TRAIN_DEFAULTS = {"sampling": "sandwich", "num_random": 0, "distill_weight": 0.5, "label_smoothing": 0.0}

register_space("llm_lora", VARIANTS, config_cls=LlmLoraConfig, build_space=build_space,
               build_supernet=build_supernet, build_static=build_static, default_variant="default",
               task="language_model", fit_data=fit_data, options=LlmLoraOptions, train_defaults=TRAIN_DEFAULTS)

"""Small Hugging Face causal LMs built locally (no hub): a byte-level BPE tokenizer trained on
your text and a randomly initialised Llama / Mistral / Qwen2 model, saved with ``save_pretrained``.

For tests, examples and the demo (``make llm-demo``, which runs ``benchmarks/bench_llm.py``); a real user points ``--model`` at
their own model folder instead.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import torch

CONFIGS = {"llama": "LlamaConfig", "mistral": "MistralConfig", "qwen2": "Qwen2Config"}


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512):
    """A byte-level BPE tokenizer (``PreTrainedTokenizerFast``) trained on ``texts``; eos ``</s>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["</s>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>")


def build_model(vocab_size: int, hidden: int = 64, layers: int = 4, heads: int = 4, kv_heads: int = 2,
                intermediate: int = 192, model_type: str = "llama", seed: int = 0, max_positions: int = 512,
                **config):
    """A randomly initialised causal LM of ``model_type`` (llama | mistral | qwen2), fp32; ``config``: more
    fields of its Hugging Face config (e.g. ``sliding_window``)."""
    import transformers
    config = getattr(transformers, CONFIGS[model_type])(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=max_positions,
        **{"tie_word_embeddings": False, **config})
    torch.manual_seed(seed)
    return transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def save_model(folder: str | os.PathLike, model, tokenizer) -> Path:
    """``save_pretrained`` of the model and its tokenizer into ``folder`` (safetensors)."""
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder

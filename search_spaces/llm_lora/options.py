"""The ``llm_lora`` space's own training options: its base model, how it is held in memory, the
sequence length and the text field.

Torch-free, so ``supernet train --help`` lists them without importing torch (the
``supernet.space_options`` entry point names this class).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from supernet.core.options import SpaceOptions

from .config import BASE_DTYPES


@dataclass(frozen=True)
class LlmLoraOptions(SpaceOptions):
    model: str | None = field(default=None, metadata={
        "help": "Hugging Face causal LM folder (frozen base; its tokenizer reads text: data)", "path": True})
    seq_len: int = field(default=128, metadata={
        "help": "tokens per training sequence (text data)", "range": (2, True, 10**6, True, True)})
    text_field: str = field(default="text", metadata={"help": "field of each .jsonl record that holds the text"})
    base_dtype: str = field(default="fp32", metadata={
        "help": "dtype of the frozen base weights (bf16 halves their memory; adapters stay fp32); eval, search "
                "and export use the run's", "choices": BASE_DTYPES})
    gradient_checkpointing: bool = field(default=False, metadata={
        "help": "recompute each decoder layer's activations in the backward pass (transformers' checkpointing): "
                "less memory, about one more forward of time"})

    def reader_options(self) -> dict:
        """The text reader's options: the base model's tokenizer, the sequence length, the JSON field."""
        return {"tokenizer": self.model, "seq_len": self.seq_len, "text_field": self.text_field}

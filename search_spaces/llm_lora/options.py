"""The ``llm_lora`` space's own training options: its base model, how it is held in memory, the
sequence length and the text field.

Torch-free, so ``supernet train --help`` lists them without importing torch (the
``supernet.space_options`` entry point names this class).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from supernet.core.options import SpaceOptions, same_option

from .config import LlmLoraConfig


@dataclass(frozen=True)
class LlmLoraOptions(SpaceOptions):
    model: str | None = field(default=None, metadata={
        "help": "Hugging Face causal LM folder (frozen base; its tokenizer reads text: data)", "path": True})
    seq_len: int = same_option(LlmLoraConfig, "seq_len", default=128)  # the built-in model's is 16
    text_field: str = field(default="text", metadata={"help": "field of each .jsonl record that holds the text"})
    base_dtype: str = same_option(LlmLoraConfig, "base_dtype")
    gradient_checkpointing: bool = same_option(LlmLoraConfig, "gradient_checkpointing")

    def reader_options(self) -> dict:
        """The text reader's options: the base model's tokenizer, the sequence length, the JSON field."""
        return {"tokenizer": self.model, "seq_len": self.seq_len, "text_field": self.text_field}

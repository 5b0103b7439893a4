"""The ``hf_encoder`` space's own training options: the pretrained model, the input size, the text fields,
the teacher and checkpointing.

Torch-free, so ``supernet train --help`` lists them without importing torch (the
``supernet.space_options`` entry point names this class).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from supernet.core.errors import SupernetError
from supernet.core.options import SpaceOptions, count

from .config import DEPTH_RULES, TEACHERS


@dataclass(frozen=True)
class HfEncoderOptions(SpaceOptions):
    model: str | None = field(default=None, metadata={
        "help": "Hugging Face classification model folder (ViT, DeiT, BERT, RoBERTa, XLM-RoBERTa, CamemBERT, ELECTRA, DistilBERT; config.json + safetensors, with "
                "its tokenizer or image processor)", "path": True})
    seq_len: int = field(default=128, metadata={
        "help": "tokens per example of text data (truncated / padded)", "range": count(2, 10**6)})
    text_field: str = field(default="text", metadata={"help": "field (JSONL) or column (CSV) of the text"})
    label_field: str = field(default="label", metadata={"help": "field (JSONL) or column (CSV) of the label"})
    image_size: int | None = field(default=None, metadata={
        "help": "image side the subnets take (default: the model's; another side interpolates the position "
                "embeddings, bicubic)", "range": count(1, 10**5)})
    teacher: str = field(default="pretrained", metadata={
        "help": "what students distil from: the pretrained model, frozen (DynaBERT), or the largest arch of the same "
                "step (inplace)", "choices": TEACHERS})
    depth_rule: str = field(default="leading", metadata={
        "help": "the layers a shallower subnet keeps: the first ones (leading, DynaBERT's) or evenly spaced from the "
                "first to the last (spread, LayerDrop's: the last layer always feeds the classifier)",
        "choices": DEPTH_RULES})
    hidden_fractions: str = field(default="1", metadata={
        "help": "hidden sizes a subnet may take, as fractions of the model's, comma-separated (e.g. 0.5,0.75,1; "
                "default 1: the hidden size stays); its channels are put in importance order too"})
    gradient_checkpointing: bool = field(default=False, metadata={
        "help": "recompute each layer's activations in the backward pass (transformers' checkpointing): less "
                "memory, about one more forward of time"})

    def check(self) -> None:
        super().check()
        self.hidden()

    def hidden(self) -> tuple[float, ...]:
        """``hidden_fractions`` as numbers; one clear line when it is not a list of fractions in (0, 1]."""
        try:
            values = tuple(float(v) for v in str(self.hidden_fractions).split(","))
        except ValueError:
            values = ()
        if not values or any(not 0 < v <= 1 for v in values):
            raise SupernetError(f"--hidden-fractions takes fractions in (0, 1] separated by commas (e.g. 0.5,0.75,1), "
                                f"got {self.hidden_fractions!r}")
        return values

    def reader_options(self) -> dict:
        """The text-classification reader's options: the model's tokenizer, the length, the fields."""
        return {"tokenizer": self.model, "seq_len": self.seq_len, "text_field": self.text_field,
                "label_field": self.label_field}

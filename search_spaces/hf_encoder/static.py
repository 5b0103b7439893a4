"""The static subnet of the ``hf_encoder`` space: a stock Hugging Face classifier as ``x -> logits``."""
from __future__ import annotations

import torch
from torch import nn

from ..hf_compat import encoder_logits


class EncoderClassifier(nn.Module):
    """``model`` (a ``...ForSequenceClassification`` / ``...ForImageClassification``) as ``x -> logits (B, C)``:
    text ``x`` = token ids ``(B, T)``, attention mask ``x != pad_id``; image ``x`` = pixel values
    ``(B, C, H, W)``, positions interpolated when ``interpolate``."""

    def __init__(self, model: nn.Module, kind: str, pad_id: int | None, interpolate: bool = False):
        super().__init__()
        self.model, self.kind, self.pad_id, self.interpolate = model, kind, pad_id, interpolate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.long() if self.kind == "text" else x
        return encoder_logits(self.model, x, self.kind, self.pad_id, self.interpolate)  # (B, C)

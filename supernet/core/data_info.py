"""What a space may know of the data before it is built: a torch-free description."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataInfo:
    """The data as a space sees it when choosing its variant and fitting its config.

    ``sample_shape`` is one input as the data gives it (no batch axis): ``(40,)`` for flat
    features, ``(1, 40)`` for a one-channel signal, ``(3, 224, 224)`` for images, ``(T,)`` for a
    token sequence. ``num_classes`` is set for labelled data, ``max_token`` for token data.
    """

    name: str
    sample_shape: tuple[int, ...]
    num_classes: int | None = None
    max_token: int | None = None

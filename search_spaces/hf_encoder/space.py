"""The ``hf_encoder`` search space: attention heads and MLP width per layer, the depth, and the hidden size
(when ``hidden_fractions`` offers more than the model's)."""
from __future__ import annotations

import torch

from supernet.core.arch import Arch, Dimension
from supernet.core.space import SearchSpace

from .config import HfEncoderConfig


class HfEncoderSpace(SearchSpace):
    name = "hf_encoder"

    def __init__(self, config: HfEncoderConfig):
        self.config = config
        n = config.num_layers
        dims = [Dimension("heads", config.heads, n), Dimension("mlp_width", config.widths, n)]
        if config.max_skip:
            dims.append(Dimension("depth", tuple(range(n - config.max_skip, n + 1))))
        if len(config.hiddens) > 1:
            dims.append(Dimension("hidden", config.hiddens))
        super().__init__(dims)

    def depth(self, arch) -> int:
        return arch["depth"] if self.config.max_skip else self.config.num_layers

    def hidden(self, arch) -> int:
        """The arch's hidden size (the model's when it is not elastic)."""
        return arch["hidden"] if len(self.config.hiddens) > 1 else self.config.hidden_size

    def inactive(self, values) -> dict[str, set[int]]:
        if not self.config.max_skip:
            return {}
        off = set(range(values["depth"], self.config.num_layers))
        return {"heads": off, "mlp_width": off}

    def cardinality(self) -> int:
        """Distinct archs: ``hiddens x sum over depth d of (heads x widths)^d``."""
        c = self.config
        per_layer = len(c.heads) * len(c.widths)
        return len(c.hiddens) * sum(per_layer ** d for d in range(c.num_layers - c.max_skip, c.num_layers + 1))

    def input_shape(self, arch: Arch) -> tuple[int, ...]:
        """Text: ``(seq_len,)`` token ids; images: ``(channels, image_size, image_size)`` pixel values."""
        c = self.config
        return (c.seq_len,) if c.kind == "text" else (c.channels, c.image_size, c.image_size)

    def example_input(self, arch: Arch, batch: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """Random token ids (never the padding id; the last quarter of every other sequence padded) or
        standard-normal pixel values."""
        c = self.config
        if c.kind == "image":
            return torch.randn((batch, *self.input_shape(arch)), generator=generator)
        ids = torch.randint(0, c.vocab_size, (batch, c.seq_len), generator=generator)
        if c.pad_id is not None:
            ids[ids == c.pad_id] = (c.pad_id + 1) % c.vocab_size
            ids[1::2, c.seq_len - c.seq_len // 4:] = c.pad_id
        return ids

    def input_size(self) -> int | None:
        """The side streamed images are decoded to (None for text)."""
        return self.config.image_size if self.config.kind == "image" else None

    def build_static(self, arch: Arch):
        return build_static(self.config, arch)

    def latency_units(self, arch: Arch) -> list:
        """The base (no layer) and each kept layer at its heads and width (:mod:`.latency`)."""
        from .latency import units
        return units(self.config, arch)

    def all_latency_units(self):
        from .latency import all_units
        return list(all_units(self.config))


def build_static(config: HfEncoderConfig, arch: Arch):
    """The static subnet's structure with fresh weights (latency; the engine loads an export's weights into it)."""
    from ..hf_compat import encoder_layout, encoder_subnet_config
    from .config import hf_config
    from .loader import build_subnet_model
    from .static import EncoderClassifier
    space = HfEncoderSpace(config)
    depth = space.depth(arch)
    torch.manual_seed(0)
    hf = encoder_subnet_config(hf_config(config), encoder_layout(config.model_type), depth,
                               list(arch["heads"][:depth]), list(arch["mlp_width"][:depth]), space.hidden(arch))
    return EncoderClassifier(build_subnet_model(hf).eval(), config.kind, config.pad_id, config.interpolate)

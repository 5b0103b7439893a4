"""The ``llm_lora`` search space: per-layer LoRA ranks and MLP widths, and the depth."""
from __future__ import annotations

from pathlib import Path

import torch

from supernet.core.arch import Arch, Dimension
from supernet.core.space import SearchSpace

from .config import LlmLoraConfig, hf_config
from .loader import CausalLMLogits, build_subnet_model, load_subnet, subnet_config


class LlmLoraSpace(SearchSpace):
    name = "llm_lora"

    def __init__(self, config: LlmLoraConfig):
        self.config = config
        n = config.num_layers
        dims = [Dimension("attn_rank", config.ranks, n), Dimension("mlp_rank", config.ranks, n),
                Dimension("mlp_width", config.widths, n)]
        if config.max_skip:
            dims.append(Dimension("depth", tuple(range(n - config.max_skip, n + 1))))
        super().__init__(dims)

    def depth(self, arch) -> int:
        return arch["depth"] if self.config.max_skip else self.config.num_layers

    def inactive(self, values) -> dict[str, set[int]]:
        if not self.config.max_skip:
            return {}
        off = set(range(values["depth"], self.config.num_layers))
        return {"attn_rank": off, "mlp_rank": off, "mlp_width": off}

    def cardinality(self) -> int:
        """Distinct archs: ``sum over depth d of (ranks^2 * widths)^d`` (one depth ``L`` when none is skipped)."""
        c = self.config
        per_layer = len(c.ranks) ** 2 * len(c.widths)
        return sum(per_layer ** d for d in range(c.num_layers - c.max_skip, c.num_layers + 1))

    def input_shape(self, arch: Arch) -> tuple[int, ...]:
        """One sequence of ``seq_len`` token ids."""
        return (self.config.seq_len,)

    def example_input(self, arch: Arch, batch: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """Random token ids ``(batch, seq_len)``."""
        return torch.randint(0, self.config.vocab_size, (batch, self.config.seq_len), generator=generator)

    def build_static(self, arch: Arch):
        """The merged subnet's structure with fresh weights (for latency measurement)."""
        return build_static(self.config, arch)

    def load_exported(self, folder):
        """The merged subnet of an export folder as ``ids -> logits`` (what ``supernet.load_exported`` returns)."""
        return CausalLMLogits(load_subnet(Path(folder) / "merged"))

    def max_tokens(self):
        """The base model's ``max_position_embeddings`` (None for the built-in model: not bounded)."""
        return self.config.max_positions

    def latency_units(self, arch: Arch) -> list:
        return []  # latency is measured on the whole merged model, never from a table

    def all_latency_units(self):
        return []


def build_static(config: LlmLoraConfig, arch: Arch):
    """The merged subnet's structure in the base's dtype, fresh weights (latency does not depend on their values)."""
    from supernet.core.placement import DTYPES
    space = LlmLoraSpace(config)
    depth = space.depth(arch)
    torch.manual_seed(0)
    model = build_subnet_model(subnet_config(hf_config(config), depth, list(arch["mlp_width"][:depth])),
                               DTYPES[config.base_dtype])
    return CausalLMLogits(model)

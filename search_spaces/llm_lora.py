"""``llm_lora``: elastic LoRA ranks, MLP widths and depth over a Hugging Face causal LM.

The base model (Llama, Mistral or Qwen2 module layout) is loaded from a local folder
(``--model PATH``) and stays frozen; only the adapters train. Dimensions, per layer ``i``:

- ``attn_rank[i]``: LoRA rank of the attention projections (q, k, v, o);
- ``mlp_rank[i]``: LoRA rank of the MLP projections (gate, up, down);
- ``mlp_width[i]``: MLP intermediate channels kept (leading, after importance reordering);
- ``depth``: layers kept (trailing layers are skipped), when ``max_skip > 0``.

Layers beyond ``depth`` are inactive (their positions canonicalise to 0). The ``tiny`` and
``small`` variants build a random Llama model in memory (no files): for tests and examples.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from supernet.arch import Arch, Dimension, SearchSpace
from supernet.errors import SupernetError
from supernet.registry import register_space

SUPPORTED = ("llama", "mistral", "qwen2")
ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LlmLoraConfig:
    """The base model (a folder, or a built-in random Llama from the structural fields) and the choices."""

    model: str | None = None
    model_hash: str | None = None
    model_type: str = "llama"
    vocab_size: int = 97
    hidden_size: int = 32
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 64
    tie_embeddings: bool = False
    seq_len: int = 16
    ranks: tuple[int, ...] = (4, 8)
    width_fractions: tuple[float, ...] = (0.5, 1.0)
    max_skip: int = 1
    lora_alpha: float = 16.0
    seed: int = 0

    def __post_init__(self):
        if self.model is not None:
            for key, value in read_structure(self.model).items():
                object.__setattr__(self, key, value)
        if any(r < 1 for r in self.ranks) or list(self.ranks) != sorted(set(self.ranks)):
            raise ValueError(f"ranks must be distinct positive integers in ascending order, got {self.ranks}")
        if any(not 0 < f <= 1 for f in self.width_fractions):
            raise ValueError(f"width fractions must be in (0, 1], got {self.width_fractions}")
        if not 0 <= self.max_skip < self.num_layers:
            raise ValueError(f"max_skip must be in [0, {self.num_layers - 1}], got {self.max_skip}")

    @property
    def widths(self) -> tuple[int, ...]:
        """MLP width choices in channels, ascending."""
        return tuple(sorted({max(1, round(f * self.intermediate_size)) for f in self.width_fractions}))

    @property
    def scaling(self) -> float:
        """LoRA scaling ``alpha / r_max``, the same for every rank."""
        return self.lora_alpha / max(self.ranks)

    @property
    def num_classes(self) -> int:
        """Size of the output's last axis (the vocabulary)."""
        return self.vocab_size

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "LlmLoraConfig":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names})


def read_structure(model: str) -> dict:
    """The structural fields of a Hugging Face model folder's ``config.json``; clear errors otherwise."""
    path = Path(model) / "config.json"
    try:
        hf = json.loads(path.read_text())
    except FileNotFoundError:
        raise SupernetError(f"--model {model!r} is not a Hugging Face model folder (no config.json)") from None
    except (OSError, ValueError) as exc:
        raise SupernetError(f"cannot read {str(path)!r}: {exc}") from None
    kind = hf.get("model_type")
    if kind not in SUPPORTED:
        raise SupernetError(f"--model {model!r} is a {kind!r} model; llm_lora supports {list(SUPPORTED)} "
                            "(decoder-only models with q/k/v/o and gate/up/down projections)")
    heads = hf["num_attention_heads"]
    return {"model_type": kind, "vocab_size": hf["vocab_size"], "hidden_size": hf["hidden_size"],
            "num_layers": hf["num_hidden_layers"], "num_heads": heads,
            "num_kv_heads": hf.get("num_key_value_heads") or heads, "intermediate_size": hf["intermediate_size"],
            "tie_embeddings": bool(hf.get("tie_word_embeddings", False))}


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
        from .llm_loader import load_subnet
        from .llm_supernet import CausalLMLogits
        return CausalLMLogits(load_subnet(Path(folder) / "merged"))

    def latency_units(self, arch: Arch) -> list:
        return []  # latency is measured on the whole merged model, never from a table

    def all_latency_units(self):
        return []


def build_static(config: LlmLoraConfig, arch: Arch):
    from .llm_supernet import CausalLMLogits, hf_config
    from .llm_loader import build_subnet_model, subnet_config
    space = LlmLoraSpace(config)
    depth = space.depth(arch)
    torch.manual_seed(0)
    return CausalLMLogits(build_subnet_model(subnet_config(hf_config(config), depth, list(arch["mlp_width"][:depth]))))


def build_supernet(config: LlmLoraConfig):
    from .llm_supernet import LlmLoraSupernet
    return LlmLoraSupernet(config)


VARIANTS = {
    # Tests: a 2-layer random Llama (hidden 32), ranks {4, 8}, widths {32, 64}, depth {1, 2}.
    "tiny": LlmLoraConfig(),
    # LoNAS-style choices for a real model: ranks {8, 16, 24, 32}, MLP widths 50-100 %, up to 2 layers skipped.
    "default": LlmLoraConfig(vocab_size=256, hidden_size=64, num_layers=4, num_heads=4, num_kv_heads=2,
                             intermediate_size=192, seq_len=128, ranks=(8, 16, 24, 32),
                             width_fractions=(0.5, 0.625, 0.75, 0.875, 1.0), max_skip=2, lora_alpha=64.0),
}

register_space("llm_lora", VARIANTS, config_cls=LlmLoraConfig, build_space=LlmLoraSpace,
               build_supernet=build_supernet, build_static=build_static, default_variant="default",
               task="language_model")


def with_model(config: LlmLoraConfig, model: str) -> LlmLoraConfig:
    """``config`` over the model folder ``model`` (its structure replaces the built-in one)."""
    return replace(config, model=str(Path(model).expanduser().resolve()), model_hash=None)

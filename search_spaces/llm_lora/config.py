"""The ``llm_lora`` space's config: the base model (a folder, or a built-in random Llama) and the choices.

Torch-free: the CLI and the registry read it without importing torch.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from supernet.core.errors import SupernetError
from supernet.core.options import PRECISION_NAMES, check_fields, count, option

SUPPORTED = ("llama", "mistral", "qwen2")


ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")


MLP = ("gate_proj", "up_proj", "down_proj")
OPTIONS = ("seq_len", "base_dtype", "gradient_checkpointing")  # declared once here, also training options


@dataclass(frozen=True)
class LlmLoraConfig:
    """The base model (a folder, or a built-in random Llama from the structural fields) and the choices.

    The fields of :data:`OPTIONS` are also ``supernet train`` options: declared here once (default, check,
    help), and held by :class:`~search_spaces.llm_lora.options.LlmLoraOptions` as the same fields."""

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
    seq_len: int = option(16, range=count(2, 10**6), help="tokens per training sequence (text data)")
    ranks: tuple[int, ...] = (4, 8)
    width_fractions: tuple[float, ...] = (0.5, 1.0)
    max_skip: int = 1
    lora_alpha: float = 16.0
    seed: int = 0
    max_positions: int | None = None  # the base's max_position_embeddings (None: the built-in model's, any)
    base_dtype: str = option("fp32", choices=PRECISION_NAMES, help=(
        "dtype of the frozen base weights (bf16 halves their memory; adapters stay fp32); eval, search and export "
        "use the run's"))
    gradient_checkpointing: bool = option(False, help=(
        "recompute each decoder layer's activations in the backward pass (transformers' checkpointing): less "
        "memory, about one more forward of time"))

    def __post_init__(self):
        if self.model is not None:
            for key, value in read_structure(self.model).items():
                object.__setattr__(self, key, value)
            object.__setattr__(self, "max_skip", min(self.max_skip, self.num_layers - 1))  # keep one layer at least
        if any(r < 1 for r in self.ranks) or list(self.ranks) != sorted(set(self.ranks)):
            raise ValueError(f"ranks must be distinct positive integers in ascending order, got {self.ranks}")
        if any(not 0 < f <= 1 for f in self.width_fractions):
            raise ValueError(f"width fractions must be in (0, 1], got {self.width_fractions}")
        if not 0 <= self.max_skip < self.num_layers:
            raise ValueError(f"max_skip must be in [0, {self.num_layers - 1}], got {self.max_skip}")
        check_fields(self, OPTIONS)  # the training options declared here (LlmLoraOptions holds them too)

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
            "tie_embeddings": bool(hf.get("tie_word_embeddings", False)),
            "max_positions": hf.get("max_position_embeddings")}


def with_model(config: LlmLoraConfig, model: str) -> LlmLoraConfig:
    """``config`` over the model folder ``model`` (its structure replaces the built-in one)."""
    return replace(config, model=str(Path(model).expanduser().resolve()), model_hash=None)


def hf_config(config: LlmLoraConfig):
    """The Hugging Face config of the base model (read from the folder, or built from the fields)."""
    from transformers import AutoConfig, LlamaConfig
    if config.model is not None:
        return AutoConfig.from_pretrained(config.model)
    return LlamaConfig(vocab_size=config.vocab_size, hidden_size=config.hidden_size,
                       intermediate_size=config.intermediate_size, num_hidden_layers=config.num_layers,
                       num_attention_heads=config.num_heads, num_key_value_heads=config.num_kv_heads,
                       max_position_embeddings=max(512, config.seq_len), tie_word_embeddings=config.tie_embeddings)

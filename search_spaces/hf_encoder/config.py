"""The ``hf_encoder`` space's config: the pretrained classifier (a folder, or a built-in random one) and the choices.

Torch-free: the CLI and the registry read it without importing torch.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from supernet.core.errors import SupernetError

from ..hf_compat import ENCODER_CLASSES, ENCODER_LAYOUTS

TEACHERS = ("pretrained", "inplace")
DEPTH_RULES = ("leading", "spread")


@dataclass(frozen=True)
class HfEncoderConfig:
    """The pretrained classification model (a folder, or a random one from the structural fields) and the choices.

    ``head_fractions`` / ``width_fractions``: attention heads and MLP channels kept per layer, as fractions of
    the model's (leading ones, after importance ordering); ``hidden_fractions``: the hidden size (the residual
    stream's channels, one for the whole subnet; ``(1.0,)``: not elastic); ``max_skip``: layers a subnet may drop;
    ``depth_rule``: which layers a subnet of depth ``d`` keeps (:meth:`kept_layers`).
    """

    model: str | None = None
    model_hash: str | None = None
    model_type: str = "bert"  # a key of hf_compat.ENCODER_LAYOUTS
    architecture: str = "BertForSequenceClassification"
    hidden_size: int = 32
    num_layers: int = 2
    num_heads: int = 4
    head_dim: int = 8
    intermediate_size: int = 64
    num_labels: int = 3
    vocab_size: int = 100  # text models
    pad_id: int | None = 0  # text models: the padding token (attention mask = ids != pad_id)
    max_positions: int = 64  # text models: position embeddings
    seq_len: int = 16  # text models: tokens per example
    channels: int = 3  # image models
    patch_size: int = 4
    model_image_size: int = 16  # the side the position embeddings cover
    image_size: int = 16  # the side the supernet takes (interpolated positions when != model_image_size)
    image_mean: tuple[float, ...] = (0.5, 0.5, 0.5)  # the image processor's normalisation
    image_std: tuple[float, ...] = (0.5, 0.5, 0.5)
    head_fractions: tuple[float, ...] = (0.5, 1.0)
    width_fractions: tuple[float, ...] = (0.5, 1.0)
    hidden_fractions: tuple[float, ...] = (1.0,)
    max_skip: int = 1
    seed: int = 0
    gradient_checkpointing: bool = False
    teacher: str = "pretrained"
    depth_rule: str = "leading"

    def __post_init__(self):
        if self.model is not None:
            for key, value in read_structure(self.model).items():
                object.__setattr__(self, key, value)
            object.__setattr__(self, "max_skip", min(self.max_skip, self.num_layers - 1))
        for name in ("head_fractions", "width_fractions", "hidden_fractions"):
            values = getattr(self, name)
            if not values or any(not 0 < f <= 1 for f in values):
                raise ValueError(f"{name} must be fractions in (0, 1], got {values}")
        if not 0 <= self.max_skip < self.num_layers:
            raise ValueError(f"max_skip must be in [0, {self.num_layers - 1}], got {self.max_skip}")
        if self.teacher not in TEACHERS:
            raise ValueError(f"teacher must be one of {list(TEACHERS)}, got {self.teacher!r}")
        if self.depth_rule not in DEPTH_RULES:
            raise ValueError(f"depth_rule must be one of {list(DEPTH_RULES)}, got {self.depth_rule!r}")

    def kept_layers(self, depth: int) -> tuple[int, ...]:
        """The model's layers a subnet of ``depth`` runs, in order. ``leading``: the first ``depth``
        (DynaBERT's and whittle's depth). ``spread``: ``depth`` layers evenly spaced from the first to the
        last, ``round(j (L - 1) / (depth - 1))`` for ``j < depth`` (LayerDrop's pruning: the last layer, the
        one the classifier was trained on, always feeds the classifier, and no shared layer has to serve as
        both an output and an input of another layer)."""
        n = self.num_layers
        if self.depth_rule == "leading" or depth >= n:
            return tuple(range(depth))
        if depth == 1:
            return (n - 1,)
        return tuple(round(j * (n - 1) / (depth - 1)) for j in range(depth))  # steps > 1: distinct, ascending

    @property
    def kind(self) -> str:
        """``text`` or ``image``."""
        return ENCODER_LAYOUTS[self.model_type].kind

    @property
    def heads(self) -> tuple[int, ...]:
        """Head-count choices, ascending."""
        return tuple(sorted({max(1, round(f * self.num_heads)) for f in self.head_fractions}))

    @property
    def widths(self) -> tuple[int, ...]:
        """MLP width choices in channels, ascending."""
        return tuple(sorted({max(1, round(f * self.intermediate_size)) for f in self.width_fractions}))

    @property
    def hiddens(self) -> tuple[int, ...]:
        """Hidden-size choices in channels, ascending (the model's own always among them)."""
        return tuple(sorted({max(1, round(f * self.hidden_size)) for f in self.hidden_fractions} | {self.hidden_size}))

    @property
    def num_classes(self) -> int:
        return self.num_labels

    @property
    def interpolate(self) -> bool:
        """Whether the position embeddings are interpolated (images of another side than the model's)."""
        return self.kind == "image" and self.image_size != self.model_image_size

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "HfEncoderConfig":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names})


def handled() -> str:
    return ", ".join(sorted(ENCODER_CLASSES))


def read_structure(model: str) -> dict:
    """The structural fields of a model folder's ``config.json`` (and ``preprocessor_config.json`` for images);
    one clear line for a folder that is not a handled classification model."""
    folder = Path(model)
    try:
        hf = json.loads((folder / "config.json").read_text())
    except FileNotFoundError:
        raise SupernetError(f"--model {model!r} is not a Hugging Face model folder (no config.json)") from None
    except (OSError, ValueError) as exc:
        raise SupernetError(f"cannot read {str(folder / 'config.json')!r}: {exc}") from None
    kind, archs = hf.get("model_type"), hf.get("architectures") or []
    arch = next((a for a in archs if a in ENCODER_CLASSES), None)
    if kind not in ENCODER_LAYOUTS or arch is None or ENCODER_CLASSES[arch] != kind:
        raise SupernetError(f"--model {model!r} is a {kind!r} model ({', '.join(archs) or 'no architectures'}); "
                            f"hf_encoder handles {handled()}: save a classification model of one of these")
    hidden, layers, heads = (_field(hf, name, folder) for name in ("hidden_size", "num_hidden_layers",
                                                                  "num_attention_heads"))
    labels = hf.get("id2label") or {}
    fields = {"model_type": kind, "architecture": arch, "hidden_size": hidden, "num_layers": layers,
              "num_heads": heads, "head_dim": hf.get("head_dim") or hidden // heads,
              "intermediate_size": _field(hf, ENCODER_LAYOUTS[kind].mlp_field, folder),
              "num_labels": len(labels) or hf.get("num_labels", 2)}
    if ENCODER_LAYOUTS[kind].kind == "text":
        fields.update(vocab_size=hf["vocab_size"], pad_id=hf.get("pad_token_id"),
                      max_positions=hf.get("max_position_embeddings", 512))
    else:
        side, patch = (_square(hf, name, default, folder) for name, default in (("image_size", 224), ("patch_size", 16)))
        fields.update(channels=hf.get("num_channels", 3), patch_size=patch, model_image_size=side, **_processor(folder))
    return fields


def _square(hf: dict, name: str, default: int, folder: Path) -> int:
    """An image model's ``image_size`` / ``patch_size``: one side (refused in one line when not square: the
    supernet takes square images, and transformers interpolates only square position grids)."""
    value = hf.get(name, default)
    sides = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(set(sides)) != 1:
        raise SupernetError(f"--model {str(folder)!r} has {name} {value}; hf_encoder takes square images and patches "
                            f"(one side): save the model with a square {name}")
    return int(sides[0])


ALIASES = {"hidden_size": "dim", "num_hidden_layers": "n_layers", "num_attention_heads": "n_heads"}  # DistilBERT


def _field(hf: dict, name: str, folder: Path) -> int:
    """A structural field of a raw ``config.json`` (under its own name or DistilBERT's); one line when absent."""
    for key in (name, ALIASES.get(name)):
        if key in hf:
            return hf[key]
    raise SupernetError(f"{str(folder / 'config.json')!r} has no {name!r}; save the model again (save_pretrained)")


def _processor(folder: Path) -> dict:
    """``image_mean`` / ``image_std`` of the folder's image processor (refused when it has none)."""
    path = folder / "preprocessor_config.json"
    try:
        proc = json.loads(path.read_text())
    except FileNotFoundError:
        raise SupernetError(f"--model {str(folder)!r} has no image processor (preprocessor_config.json); save it "
                            "beside the model (image_processor.save_pretrained)") from None
    except (OSError, ValueError) as exc:
        raise SupernetError(f"cannot read {str(path)!r}: {exc}") from None
    mean, std = proc.get("image_mean", [0.5, 0.5, 0.5]), proc.get("image_std", [0.5, 0.5, 0.5])
    if not proc.get("do_normalize", True):
        mean, std = [0.0] * len(mean), [1.0] * len(std)
    return {"image_mean": tuple(float(m) for m in mean), "image_std": tuple(float(s) for s in std)}


def with_model(config: HfEncoderConfig, model: str, **fields) -> HfEncoderConfig:
    """``config`` over the model folder ``model`` (its structure replaces the built-in one)."""
    config = replace(config, model=str(Path(model).expanduser().resolve()), model_hash=None)
    if config.kind == "image" and "image_size" not in fields:
        fields["image_size"] = config.model_image_size
    return replace(config, **fields)


def hf_config(config: HfEncoderConfig):
    """The Hugging Face config of the model (read from the folder, or built from the fields)."""
    from transformers import AutoConfig, BertConfig, RobertaConfig
    if config.model is not None:
        return AutoConfig.from_pretrained(config.model)
    common = dict(hidden_size=config.hidden_size, num_hidden_layers=config.num_layers,
                  num_attention_heads=config.num_heads, intermediate_size=config.intermediate_size,
                  num_labels=config.num_labels, architectures=[config.architecture])
    if config.kind == "text":
        cls = RobertaConfig if config.model_type == "roberta" else BertConfig
        return cls(vocab_size=config.vocab_size, pad_token_id=config.pad_id,
                   max_position_embeddings=config.max_positions, **common)
    import transformers
    cls = getattr(transformers, "DeiTConfig" if config.model_type == "deit" else "ViTConfig")
    return cls(image_size=config.model_image_size, patch_size=config.patch_size, num_channels=config.channels,
               head_dim=config.head_dim, **common)

"""Import OFA's published MobileNet-family supernets: OFA checkpoint file -> ``mobilenet`` state dict.

An OFA checkpoint (what ``ofa.model_zoo.ofa_net(NAME, pretrained=True)`` downloads) is a ``torch.save``
of ``{"state_dict": {...}}``; it is read with ``torch.load(weights_only=True)``, so a file that needs
code to load is refused. Key names: OFA's own loader accepts several spellings of the same tensor
(``mobile_inverted_conv`` / ``conv``, ``bn.bn`` / ``bn``, ``conv.conv.weight`` / ``conv.weight``,
``linear.linear`` / ``linear``); :func:`canonical` folds them the same way before mapping.
Every tensor of our supernet has exactly one OFA tensor (:func:`ofa_key`); the only reshape is the
feature-mix 1x1 conv ``(F, E, 1, 1)`` -> our linear ``(F, E)``. Any missing, extra or misshapen
tensor is one :class:`SupernetError` naming it, and the net the file looks like when it is another.
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from functools import lru_cache
from pathlib import Path

import torch

from supernet.core.errors import SupernetError

from .config import MobileNetConfig
from .model import MobileNetSupernet
from .ofa_nets import OFA_NETS, with_resolutions

_SPELLINGS = ((".mobile_inverted_conv.", ".conv."), (".bn.bn.", ".bn."), (".conv.conv.weight", ".conv.weight"),
              (".linear.linear.", ".linear."))
_OPTIONAL = "num_batches_tracked"  # BN's step counter: absent from files of older torch, unused in eval


def canonical(key: str) -> str:
    """One spelling of an OFA key (``module.`` prefixes of DataParallel dropped)."""
    key = key[len("module."):] if key.startswith("module.") else key
    for old, new in _SPELLINGS:
        key = key.replace(old, new)
    return key


_BLOCK_PARTS = {"expand": "inverted_bottleneck.conv", "expand_bn": "inverted_bottleneck.bn",
                "depthwise": "depth_conv.conv", "depthwise_bn": "depth_conv.bn", "se.reduce": "depth_conv.se.fc.reduce",
                "se.expand": "depth_conv.se.fc.expand", "project": "point_linear.conv", "project_bn": "point_linear.bn"}
_STEM_PARTS = {"conv": "first_conv.conv", "bn": "first_conv.bn", "depthwise": "blocks.0.conv.depth_conv.conv",
               "depthwise_bn": "blocks.0.conv.depth_conv.bn", "project": "blocks.0.conv.point_linear.conv",
               "project_bn": "blocks.0.conv.point_linear.bn"}


def ofa_key(key: str, config: MobileNetConfig) -> str:
    """The (canonical) OFA key of our supernet's tensor ``key``. Our block slot ``i`` is OFA's
    ``blocks.{i + 1}`` (OFA's ``blocks.0`` is the stem's separable block); the head's 1x1 conv is
    OFA's ``final_expand_layer`` (MobileNetV3) or ``feature_mix_layer`` (ProxylessNAS, no mix layer)."""
    module, _, leaf = key.rpartition(".")
    top, _, rest = module.partition(".")
    if top == "stem":
        return f"{_STEM_PARTS[rest]}.{leaf}"
    if top == "blocks":
        index, _, part = rest.partition(".")
        return f"blocks.{int(index) + 1}.conv.{_BLOCK_PARTS[part]}.{leaf}"
    head = {"expand": "final_expand_layer.conv" if config.head_features else "feature_mix_layer.conv",
            "expand_bn": "final_expand_layer.bn" if config.head_features else "feature_mix_layer.bn",
            "mix": "feature_mix_layer.conv", "classifier": "classifier.linear"}
    return f"{head[rest]}.{leaf}"


@lru_cache(maxsize=8)
def expected_shapes(config: MobileNetConfig) -> dict[str, tuple[tuple[int, ...], str, tuple[int, ...]]]:
    """``{canonical OFA key: (OFA shape, our key, our shape)}`` of the net ``config`` describes."""
    state = MobileNetSupernet(config).state_dict()  # on the CPU: faster than the meta device's first use
    out = {}
    for key, tensor in state.items():
        shape = tuple(tensor.shape)
        ofa_shape = shape + (1, 1) if key == "head.mix.weight" else shape  # OFA's mix layer is a 1x1 conv
        out[ofa_key(key, config)] = (ofa_shape, key, shape)
    return out


def read_ofa_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict of an OFA checkpoint file (``{"state_dict": ...}`` or a bare state dict), keys
    canonical; read without executing code. One clear error for a missing, damaged or unsafe file."""
    path = Path(path)
    if not path.is_file():
        raise SupernetError(f"OFA weights {str(path)!r} do not exist (give the file ofa_net(..., pretrained=True) "
                            "downloads, e.g. .torch/ofa_nets/ofa_mbv3_d234_e346_k357_w1.0)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "weights_only" in text.lower() or "Unsupported global" in text:
            found = re.search(r"Unsupported global: GLOBAL (\S+)", text) or re.search(r"(Unsupported operand \S+)", text)
            what = f"it names {found.group(1)}" if found else _short(text.splitlines()[0])
            raise SupernetError(f"OFA weights {str(path)!r} need code to load, which torch.load(weights_only=True) "
                                f"refuses ({what}); an OFA checkpoint holds only tensors: re-save its state_dict "
                                "with torch.save") from None
        raise SupernetError(f"OFA weights {str(path)!r} are damaged or not a torch file ({_short(text)})") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, AttributeError, IndexError) as exc:
        raise SupernetError(f"OFA weights {str(path)!r} are truncated or not a torch checkpoint "
                            f"({type(exc).__name__}: {_short(str(exc).split('. ')[0])})") from None
    state = data.get("state_dict", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SupernetError(f"OFA weights {str(path)!r} hold no state dict of tensors (expected a dict with "
                            "'state_dict', as OFA's checkpoint files)")
    folded = {}
    for key, tensor in state.items():
        name = canonical(str(key))
        if name in folded:
            raise SupernetError(f"OFA weights {str(path)!r} hold {name!r} twice (as {key!r} too)")
        folded[name] = tensor
    return folded


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _fits(state: dict, expected: dict) -> bool:
    return (set(state) <= set(expected) and all(k in state or k.endswith(_OPTIONAL) for k in expected)
            and all(tuple(state[k].shape) == shape for k, (shape, _, _) in expected.items() if k in state))


def looks_like(state: dict[str, torch.Tensor]) -> str | None:
    """The OFA net whose keys and shapes ``state`` has, or a word on what it is; None if none fits."""
    for name, config in OFA_NETS.items():
        if _fits(state, expected_shapes(config)):
            return name
    if any(k.startswith("input_stem.") for k in state):
        return "ofa_resnet50 (an OFA ResNet)"
    return None


def convert_state(state: dict[str, torch.Tensor], net: str, config: MobileNetConfig,
                  source: str) -> dict[str, torch.Tensor]:
    """Our supernet's state dict from the canonical OFA ``state`` of ``net``: every tensor mapped,
    none left over; else one error naming the first problem and the net the file looks like."""
    expected = expected_shapes(config)
    missing = [k for k in expected if k not in state and not k.endswith(_OPTIONAL)]
    extra = sorted(set(state) - set(expected))
    wrong = [(k, tuple(state[k].shape), shape) for k, (shape, _, _) in expected.items()
             if k in state and tuple(state[k].shape) != shape]
    if missing or extra or wrong:
        other = looks_like(state)
        hint = (f"; it looks like {other}: pass --net {other.split()[0]}" if other and other != net else
                "; is it a checkpoint of another network, or damaged?")
        if wrong:
            k, got, want = wrong[0]
            what = f"{k} has shape {got}, {net} needs {want} ({len(wrong)} tensors differ)"
        elif missing:
            what = f"{len(missing)} tensors of {net} are missing, e.g. {missing[0]!r}"
        else:
            what = f"{len(extra)} tensors are not part of {net}, e.g. {extra[0]!r}"
        raise SupernetError(f"OFA weights {source!r} do not match {net}: {what}{hint}")
    ours = {}
    for key, (_, our_key, our_shape) in expected.items():
        tensor = state.get(key)
        if tensor is None:  # an optional BN step counter
            tensor = torch.zeros((), dtype=torch.long)
        ours[our_key] = tensor.reshape(our_shape)  # a view of the tensor just read from the file
    return ours


def import_ofa_mobilenet(net: str, weights: str | os.PathLike, resolutions=None):
    """``(space, variant, config, state dict)`` of OFA's ``net`` from its checkpoint file ``weights``;
    ``resolutions`` narrows the run's resolutions (default: all OFA trained, 128..224 step 4)."""
    config = OFA_NETS[net]
    if resolutions is not None:
        config = with_resolutions(config, resolutions)
    state = read_ofa_file(weights)
    return "mobilenet", net, config, convert_state(state, net, config, str(weights))


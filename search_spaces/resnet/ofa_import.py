"""Import OFA's published ``ofa_resnet50`` supernet (``OFAResNets``) into the ``resnet`` space.

``convert_ofa_resnet50(checkpoint) -> (config, state_dict)`` maps OFA's checkpoint (the dict with
``state_dict`` that ``ofa.model_zoo.ofa_net("ofa_resnet50", pretrained=True)`` downloads, or that
state dict itself) onto :class:`~search_spaces.resnet.model.ResNetSupernet`'s keys; every tensor is
kept as it is (our layers slice the same leading channels as OFA's ``get_active_filter``).
``read_ofa_checkpoint(path)`` reads the file without executing code; ``import_ofa_resnet50(weights,
out)`` writes a run folder (``checkpoints/step-0000000``) that eval, search, export, finetune and
``train --init`` accept.

Key map (OFA -> ours); OFA's older checkpoint spelling (``conv.weight`` for ``conv.conv.weight``,
``bn.`` for ``bn.bn.``, ``.linear.`` for ``.linear.linear.``) is accepted as OFA's own
``OFAResNets.load_state_dict`` accepts it::

    input_stem.0.conv.conv.weight        stem.conv0.weight       (input_stem.0.bn.bn.*: stem.bn0.*)
    input_stem.1.conv.conv.conv.weight   stem.conv1.weight       (input_stem.1.conv.bn.bn.*: stem.bn1.*)
    input_stem.2.conv.conv.weight        stem.conv2.weight       (input_stem.2.bn.bn.*: stem.bn2.*)
    blocks.i.convN.conv.conv.weight      blocks.i.convN.weight   (blocks.i.convN.bn.bn.*: blocks.i.bnN.*)
    blocks.i.downsample.conv.conv.weight blocks.i.down_conv.weight (...downsample.bn.bn.*: blocks.i.down_bn.*)
    classifier.linear.linear.{weight,bias} head.classifier.{weight,bias}
"""
from __future__ import annotations

import os
import pickle
from dataclasses import replace
from pathlib import Path

import torch

from supernet.core.errors import SupernetError

from .config import ResNetConfig

NET = "ofa_resnet50"
OFA_RESOLUTIONS = tuple(range(128, 225, 4))  # what OFA trained its supernets on (continuous sizes, step 4)
# OFA's ofa_net("ofa_resnet50"): depth_list [0,1,2], expand_ratio_list [0.2,0.25,0.35], width_mult_list [0.65,0.8,1.0]
OFA_RESNET50 = ResNetConfig(resolutions=OFA_RESOLUTIONS)
OPTIONAL = ("num_batches_tracked",)  # BN counters: not used by eval; zero when a checkpoint lacks them

_STEM = {"conv0": "input_stem.0.conv.conv", "bn0": "input_stem.0.bn.bn", "conv1": "input_stem.1.conv.conv.conv",
         "bn1": "input_stem.1.conv.bn.bn", "conv2": "input_stem.2.conv.conv", "bn2": "input_stem.2.bn.bn"}
_BLOCK = {"conv1": "conv1.conv.conv", "bn1": "conv1.bn.bn", "conv2": "conv2.conv.conv", "bn2": "conv2.bn.bn",
          "conv3": "conv3.conv.conv", "bn3": "conv3.bn.bn", "down_conv": "downsample.conv.conv",
          "down_bn": "downsample.bn.bn"}


def ofa_key(key: str) -> str:
    """OFA's name of our supernet key ``key`` (``stem.bn0.weight`` -> ``input_stem.0.bn.bn.weight``)."""
    parts = key.split(".")
    if parts[0] == "stem":
        return f"{_STEM[parts[1]]}.{parts[2]}"
    if parts[0] == "blocks":
        return f"blocks.{parts[1]}.{_BLOCK[parts[2]]}.{parts[3]}"
    if parts[:2] == ["head", "classifier"]:
        return f"classifier.linear.linear.{parts[2]}"
    raise KeyError(key)


def _ofa_name(key: str, known) -> str:
    """The model's key of a checkpoint key, as OFA's ``OFAResNets.load_state_dict`` finds it: the key itself
    when ``known``, else the first renaming of an older spelling that applies (a ``module.`` prefix of
    ``DataParallel`` dropped first)."""
    key = key[len("module."):] if key.startswith("module.") else key
    if key in known:
        return key
    if ".linear." in key:
        return key.replace(".linear.", ".linear.linear.")
    if "bn." in key:
        return key.replace("bn.", "bn.bn.")
    if "conv.weight" in key:
        return key.replace("conv.weight", "conv.conv.weight")
    return key


def expected_state(config: ResNetConfig = OFA_RESNET50) -> dict[str, torch.Tensor]:
    """Our supernet's state dict as shapes and dtypes only (built on the meta device: no memory, no init)."""
    from .model import ResNetSupernet
    with torch.device("meta"):
        return ResNetSupernet(config).state_dict()


def _tensors(checkpoint, name: str) -> dict[str, torch.Tensor]:
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(k, str) for k in state):
        raise SupernetError(f"{name} is not an OFA checkpoint: expected a dict with 'state_dict' (name -> tensor)")
    bad = next((k for k, v in state.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise SupernetError(f"{name}: entry {bad!r} is a {type(state[bad]).__name__}, not a tensor")
    return state


def with_resolutions(resolutions=None) -> ResNetConfig:
    """OFA's ``ofa_resnet50`` config holding ``resolutions`` (default: all it was trained on), each one
    OFA's supernets support (128..224 px in steps of 4)."""
    if resolutions is None:
        return OFA_RESNET50
    bad = sorted(set(resolutions) - set(OFA_RESOLUTIONS))
    if bad or not resolutions:
        raise SupernetError(f"resolution {bad[0] if bad else 'list'} is not one {NET} supports: choose among "
                            "128..224 px in steps of 4")
    return replace(OFA_RESNET50, resolutions=tuple(sorted(set(resolutions))))


def convert_ofa_resnet50(checkpoint, name: str = "the checkpoint",
                         resolutions=None) -> tuple[ResNetConfig, dict[str, torch.Tensor]]:
    """``(config, state_dict)`` of our ``resnet`` supernet (variant ``ofa``, narrowed to ``resolutions``)
    holding OFA's ``ofa_resnet50`` weights (``checkpoint``: ``{'state_dict': ...}`` or the state dict).
    Raises :class:`SupernetError` naming the first missing, unexpected or misshapen key."""
    config = with_resolutions(resolutions)
    state = _tensors(checkpoint, name)
    expected = expected_state(config)
    ours_of = {ofa_key(k): k for k in expected}
    if not any(_ofa_name(k, ours_of).startswith("input_stem.") for k in state):
        raise SupernetError(f"{name} is not an {NET} checkpoint (no input_stem.* keys; its first key is "
                            f"{next(iter(state))!r}): pass the --net it was saved for")
    out = {}
    for key, tensor in state.items():
        ours = ours_of.get(_ofa_name(key, ours_of))
        if ours is None:
            raise SupernetError(f"{name}: unexpected key {key!r} for {NET} (is it another network or width?)")
        if ours in out:
            raise SupernetError(f"{name} holds {ofa_key(ours)!r} twice (as {key!r} too)")
        if tuple(tensor.shape) != tuple(expected[ours].shape):
            raise SupernetError(f"{name}: {key} has shape {tuple(tensor.shape)}, {NET} needs "
                                f"{tuple(expected[ours].shape)} (is it another network or width?)")
        if tensor.is_floating_point() != expected[ours].is_floating_point():
            raise SupernetError(f"{name}: {key} has dtype {tensor.dtype}, {NET} needs {expected[ours].dtype}")
        out[ours] = tensor.float() if tensor.is_floating_point() else tensor.to(expected[ours].dtype)
    for ours, spec in expected.items():
        if ours not in out:
            if not ours.endswith(OPTIONAL):
                raise SupernetError(f"{name}: missing key {ofa_key(ours)!r} for {NET} (a truncated or other checkpoint?)")
            out[ours] = torch.zeros(spec.shape, dtype=spec.dtype)
    return config, {k: out[k] for k in expected}


def read_ofa_checkpoint(path: str | os.PathLike) -> dict:
    """OFA's checkpoint file, read with ``torch.load(weights_only=True)`` (no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise SupernetError(f"OFA checkpoint {str(path)!r} does not exist or is not a file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SupernetError(f"OFA checkpoint {str(path)!r} cannot be read without executing code "
                            f"(weights_only refused it: {first[:160]})") from None
    except Exception as exc:  # noqa: BLE001  (torch raises many types for a damaged file)
        raise SupernetError(f"OFA checkpoint {str(path)!r} is truncated or damaged ({type(exc).__name__}); "
                            "download it again") from None


def import_ofa_file(weights: str | os.PathLike, resolutions=None) -> tuple[str, str, ResNetConfig, dict]:
    """``(space, variant, config, state_dict)`` from OFA's ``ofa_resnet50`` checkpoint file: the converter
    ``supernet import ofa --net ofa_resnet50`` calls (``register_importer("ofa", "ofa_resnet50", ...)``)."""
    with_resolutions(resolutions)  # refused before the file is read
    config, state = convert_ofa_resnet50(read_ofa_checkpoint(weights), str(weights), resolutions)
    return "resnet", "ofa", config, state


def import_ofa_resnet50(weights: str | os.PathLike, out: str | os.PathLike, *, resolutions=None,
                        overwrite: bool = False) -> Path:
    """Convert the OFA checkpoint file ``weights`` and write the run folder ``out``: ``config.json``,
    ``log.jsonl`` and ``checkpoints/step-0000000`` (weights + config), the files ``supernet train`` writes,
    with ``imported`` (source, net, file) and no training data recorded. The folder is built beside
    ``out`` and renamed (nothing is written when the file is refused). Where the engine has the
    ``supernet import ofa`` command (its importer registry calls :func:`import_ofa_file`), that is the
    command's path; this is its stand-alone twin for this space."""
    from supernet.core.registry import build_supernet, config_to_dict
    from supernet.io.checkpoint import write_checkpoint
    from supernet.io.files import atomic_dir, atomic_write_json, atomic_write_text
    from supernet.io.runs import check_apart, check_writable
    check_apart(out, [weights])
    check_writable(out)
    if Path(out).exists() and any(Path(out).iterdir()) and not overwrite:
        raise SupernetError(f"run folder {str(out)!r} already exists; pass overwrite=True or choose another folder")
    _, variant, config, state = import_ofa_file(weights, resolutions)
    model = build_supernet("resnet", config)
    model.load_state_dict(state)
    meta = {"space": "resnet", "variant": variant, "space_config": config_to_dict(config), "data": None,
            "total_steps": 0, "task": "classification", "image_size": max(config.resolutions),
            "imported": {"source": "ofa", "net": NET, "weights": str(Path(weights).resolve()),
                         "bytes": Path(weights).stat().st_size}}
    with atomic_dir(Path(out)) as tmp:
        step = tmp / "checkpoints" / "step-0000000"
        step.mkdir(parents=True)
        write_checkpoint(step, 0, model, meta, None)
        atomic_write_json(tmp / "config.json", meta)
        atomic_write_text(tmp / "log.jsonl", "")
    return Path(out)

"""Checkpoints: one folder per save, written to a temp folder and renamed atomically.

Layout of ``<run>/checkpoints/step-000500/``::

    weights.safetensors   supernet state dict
    config.json           space name + space config + training config + step
    trainer.pt            optimizer, scheduler, RNG states (loaded with weights_only=True)

A run folder or a ``step-*`` folder can be passed wherever a checkpoint is expected;
a run folder means its latest checkpoint.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..core.errors import SupernetError
from ..core.registry import build_supernet, config_from_dict
from .files import atomic_dir, atomic_write_json, read_json

WEIGHTS, CONFIG, TRAINER = "weights.safetensors", "config.json", "trainer.pt"


def save_checkpoint(run_dir: Path, step: int, model: torch.nn.Module, meta: dict, trainer_state: dict | None,
                    keep: int = 2) -> Path:
    """Write a complete checkpoint for ``step`` and drop all but the newest ``keep``."""
    final = Path(run_dir) / "checkpoints" / f"step-{step:07d}"
    with atomic_dir(final) as tmp:
        write_checkpoint(tmp, step, model, meta, trainer_state)
    prune_checkpoints(final.parent, keep)
    return final


def write_checkpoint(folder: Path, step: int, model: torch.nn.Module, meta: dict, trainer_state: dict | None) -> None:
    """The files of one checkpoint (weights fp32 on the CPU, trainer state, config with ``step``) into ``folder``."""
    state = {k: v.detach().float().cpu().contiguous() if v.is_floating_point() else v.detach().cpu().contiguous()
             for k, v in model.state_dict().items()}
    save_file(state, str(Path(folder) / WEIGHTS))
    if trainer_state is not None:
        torch.save(trainer_state, Path(folder) / TRAINER)
    atomic_write_json(Path(folder) / CONFIG, {**meta, "step": step})


def prune_checkpoints(root: Path, keep: int = 2) -> None:
    """Drop all but the newest ``keep`` ``step-*`` folders of ``root``."""
    for old in sorted(Path(root).glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def has_checkpoint(run_dir: Path) -> bool:
    return any((Path(run_dir) / "checkpoints").glob("step-*"))


def remove_stale_temps(run_dir: Path) -> list[Path]:
    """Remove the temp folders that a save killed mid-way left (``checkpoints/.step-*.tmp-*``)."""
    stale = sorted((Path(run_dir) / "checkpoints").glob(".step-*.tmp-*"))
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    return stale


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint folder from a run folder (its latest) or a checkpoint folder itself."""
    path = Path(path)
    if not path.exists():
        raise SupernetError(f"checkpoint {str(path)!r} does not exist")
    if (path / WEIGHTS).exists():
        return path
    steps = sorted((path / "checkpoints").glob("step-*"))
    if not steps:
        raise SupernetError(f"{str(path)!r} holds no checkpoint (expected {WEIGHTS} or checkpoints/step-*)")
    return steps[-1]


def run_of(path: str | os.PathLike) -> Path:
    """The training run a checkpoint belongs to (``RUN`` for ``RUN/checkpoints/step-N``), absolute;
    a checkpoint folder outside a run stands for itself."""
    folder = resolve_checkpoint(path).resolve()
    return folder.parent.parent if folder.parent.name == "checkpoints" else folder


def load_checkpoint_into(model: torch.nn.Module, folder: Path) -> int:
    """Load a checkpoint folder's weights into ``model`` (any device); returns its step."""
    meta = read_json(folder / CONFIG, "checkpoint config")
    load_weights(model, folder / WEIGHTS)
    return int(meta["step"])


def load_checkpoint(path: str | os.PathLike) -> tuple[torch.nn.Module, dict]:
    """Rebuild the supernet (on the CPU, fp32) from ``config.json`` and load its weights; ``(model, meta)``."""
    folder = resolve_checkpoint(path)
    meta = read_json(folder / CONFIG, "checkpoint config")
    if "space" not in meta or "space_config" not in meta:
        raise SupernetError(f"{str(folder / CONFIG)!r} is not a supernet checkpoint config (no 'space')")
    model = build_supernet(meta["space"], config_from_dict(meta["space"], meta["space_config"]))
    load_weights(model, folder / WEIGHTS)
    return model, meta


def load_weights(model: torch.nn.Module, path: Path) -> None:
    """Load a safetensors state dict, with one clear error for any mismatch."""
    try:
        state = load_file(str(path))
    except FileNotFoundError:
        raise SupernetError(f"weights file {str(path)!r} does not exist") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise SupernetError(f"weights file {str(path)!r} is corrupted or not safetensors ({exc})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise SupernetError(f"weights {str(path)!r} do not match the model: missing {missing[:3]}, "
                            f"unexpected {unexpected[:3]} (was it saved for another space or variant?)")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise SupernetError(f"weights {str(path)!r}: {name} has shape {tuple(tensor.shape)}, the model needs "
                                f"{tuple(expected[name].shape)} (was it saved for another space or variant?)")
    model.load_state_dict(state)  # copies into the model's own device and dtype


def load_trainer_state(folder: Path, device: torch.device | str = "cpu") -> dict:
    """Optimizer, scheduler and RNG states, tensors mapped to ``device`` (RNG states stay on the CPU)."""
    try:
        state = torch.load(folder / TRAINER, weights_only=True, map_location=device)
        for key in ("torch_rng", "cuda_rng"):
            if key in state:
                state[key] = state[key].cpu()
        return state
    except FileNotFoundError:
        raise SupernetError(f"{str(folder)!r} has no {TRAINER}; cannot resume training from it") from None
    except Exception as exc:  # torch raises many types for a corrupted file
        raise SupernetError(f"trainer state in {str(folder)!r} is unreadable ({type(exc).__name__})") from None

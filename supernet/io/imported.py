"""A run folder from another project's supernet weights (``supernet import``).

The folder has the files ``supernet train`` writes (``config.json``, ``log.jsonl``,
``checkpoints/step-0000000/{weights.safetensors, config.json}``), so ``eval``, ``search``,
``export`` and ``finetune`` accept it. ``config.json`` records ``imported`` (source, net, the
file's path, size and SHA-256) and no training data (``train.data`` is None). The whole folder is
written in a temp folder beside ``out`` and renamed: never half-written.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from ..core.errors import SupernetError
from ..core.registry import build_supernet
from .checkpoint import CONFIG, write_checkpoint
from .claim import CLAIM
from .files import atomic_dir, atomic_write_json, atomic_write_text
from .runs import check_apart, check_writable, claimed_folder, contents


def check_out(out: str | os.PathLike, weights: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse, before any work, an ``out`` that exists (unless ``overwrite``), overlaps ``weights`` or
    cannot be written."""
    out = Path(out)
    check_apart(out, [weights])
    check_writable(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise SupernetError(f"run folder {str(out)!r} already exists; pass --overwrite or choose another --out")
    return out


def file_digest(path: str | os.PathLike) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def save_imported(out: str | os.PathLike, space: str, config, state: dict[str, torch.Tensor], meta: dict,
                  overwrite: bool = False) -> Path:
    """Build ``space``'s supernet from ``config``, load ``state`` (strict: every key, every shape) and
    write the run folder ``out`` with ``meta`` as its config; returns ``out``."""
    model = build_supernet(space, config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # the importer's mapping is checked before; this guards its contract
        raise SupernetError(f"imported weights do not fit the {space} supernet: {str(exc).splitlines()[0]}") from None
    out = Path(out)
    if out.exists() and not out.is_dir() and overwrite:
        out.unlink()
    with claimed_folder(out, "run folder"):  # one writer (supernet.io.claim)
        if contents(out) and not overwrite:
            raise SupernetError(f"run folder {str(out)!r} already exists; pass --overwrite or choose another --out")
        with atomic_dir(out, keep=CLAIM) as tmp:  # replaces an existing folder only once the new one is complete
            step_dir = tmp / "checkpoints" / "step-0000000"
            step_dir.mkdir(parents=True)
            write_checkpoint(step_dir, 0, model, meta, None)
            atomic_write_json(tmp / CONFIG, meta)
            atomic_write_text(tmp / "log.jsonl", "")
    return out

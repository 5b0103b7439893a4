"""Write a state dict as Hugging Face safetensors shards, one tensor in memory at a time.

``save_file`` needs every tensor of a file at once; a merged 7B model would then sit in memory
beside the supernet's own base. :func:`write_shards` takes a function that yields ``(name,
tensor)`` pairs, reads it once for the names, shapes and dtypes (tensors are dropped as they
come), plans shards of at most ``max_shard_bytes``, and reads it again, writing each tensor's
bytes straight into its shard. The layout is the safetensors format (an 8-byte little-endian
header length, a JSON header with every tensor's dtype, shape and byte range, then the data)
and Hugging Face's ``model.safetensors.index.json`` when there is more than one shard, so
``from_pretrained`` and ``safetensors.safe_open`` read the result.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Callable, Iterable

import torch

from .files import atomic_write_json

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL"}
MAX_SHARD_BYTES = 2 * 2**30


def write_shards(folder: str | Path, tensors: Callable[[], Iterable[tuple[str, torch.Tensor]]],
                 max_shard_bytes: int = MAX_SHARD_BYTES, prefix: str = "model") -> list[Path]:
    """Write the pairs of ``tensors()`` (called twice, same names and shapes each time) into ``folder`` as
    ``model.safetensors``, or ``model-0000k-of-0000n.safetensors`` plus ``model.safetensors.index.json``."""
    folder = Path(folder)
    specs = [(name, tuple(t.shape), t.dtype) for name, t in tensors()]
    groups = _plan(specs, max_shard_bytes)
    names = ([f"{prefix}.safetensors"] if len(groups) == 1 else
             [f"{prefix}-{k + 1:05d}-of-{len(groups):05d}.safetensors" for k in range(len(groups))])
    stream = iter(tensors())
    for group, file in zip(groups, names):
        _write_one(folder / file, group, stream)
    if len(groups) > 1:
        weight_map = {name: file for group, file in zip(groups, names) for name, _, _ in group}
        atomic_write_json(folder / f"{prefix}.safetensors.index.json",
                          {"metadata": {"total_size": sum(_nbytes(s) for s in specs)}, "weight_map": weight_map})
    return [folder / n for n in names]


def _nbytes(spec) -> int:
    _, shape, dtype = spec
    return int(torch.Size(shape).numel()) * torch.empty((), dtype=dtype).element_size()


def _plan(specs: list, limit: int) -> list[list]:
    """Consecutive groups of specs, each at most ``limit`` bytes (a bigger tensor alone in its own)."""
    groups, size = [[]], 0
    for spec in specs:
        if spec[2] not in DTYPES:
            raise ValueError(f"{spec[0]}: dtype {spec[2]} cannot be written to safetensors here")
        if groups[-1] and size + _nbytes(spec) > limit:
            groups.append([])
            size = 0
        groups[-1].append(spec)
        size += _nbytes(spec)
    return groups


def _write_one(path: Path, group: list, stream) -> None:
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for spec in group:
        end = offset + _nbytes(spec)
        header[spec[0]] = {"dtype": DTYPES[spec[2]], "shape": list(spec[1]), "data_offsets": [offset, end]}
        offset = end
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)))
        fh.write(text)
        for name, shape, dtype in group:
            got, tensor = next(stream)
            if got != name or tuple(tensor.shape) != shape or tensor.dtype != dtype:
                raise RuntimeError(f"tensor stream changed between passes: {got} {tuple(tensor.shape)} != {name} {shape}")
            data = tensor.detach().cpu().contiguous().reshape(-1)
            if data.numel():
                fh.write(memoryview(data.view(torch.uint8).numpy()))

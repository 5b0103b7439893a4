"""The data protocol every source offers, and the batching shared by the in-memory sources.

Training and evaluation use only this protocol: ``name``, ``info()`` (a
:class:`~supernet.core.data_info.DataInfo`: sample shape, classes), ``set_image_size(size)``,
``steps_per_epoch(batch_size)``, ``train_batches(start_step, batch_size, seed, shard=(rank,
world))`` (endless; step k is a pure function of ``(seed, k)``; with ``shard`` each of ``world``
ranks gets its own equal slice of that global batch), ``eval_batches(split, batch_size)``,
``calibration_batches(n_batches, batch_size, seed)``, ``split_size(split)``, ``describe()``.
Validation is what search uses; test is only for the final report.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.errors import SupernetError

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    x: torch.Tensor  # (N, *sample_shape): float32 features, or int64 token ids
    y: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.y)


class SplitBatches:
    """Batching shared by the in-memory data sources: ``split(name)`` and ``train`` give :class:`Split` s."""

    def split_size(self, name: str) -> int:
        return len(self.split(name))

    def steps_per_epoch(self, batch_size: int) -> int:
        return BatchStream(self.train, batch_size, 0).steps_per_epoch

    def train_batches(self, start_step: int, batch_size: int, seed: int, shard: tuple[int, int] = (0, 1)):
        """Endless ``(x, y)`` batches from step ``start_step`` (see :class:`BatchStream`); with
        ``shard=(rank, world)``, rows ``[rank * b, (rank + 1) * b)`` of each global batch, ``b = batch_size / world``."""
        lo, hi = shard_rows(batch_size, shard)
        stream = BatchStream(self.train, batch_size, seed)
        step = start_step
        while True:
            x, y = stream.batch(step)
            yield x[lo:hi], y[lo:hi]
            step += 1


def shard_rows(batch_size: int, shard: tuple[int, int]) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of a global batch that rank ``shard[0]`` of ``shard[1]`` reads (equal slices)."""
    rank, world = shard
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"shard must be (rank, world) with 0 <= rank < world, got {shard}")
    if batch_size % world:
        raise SupernetError(f"--batch-size {batch_size} must split evenly across {world} workers; "
                            f"use a multiple of {world}")
    per = batch_size // world
    return rank * per, (rank + 1) * per


class BatchStream:
    """Deterministic batches: epoch ``e`` is a permutation drawn from ``(seed, e)``.

    ``batch(step)`` is a pure function of ``step``, so a resumed run sees exactly the
    batches an uninterrupted one would. The last partial batch of an epoch is dropped.
    """

    def __init__(self, split: Split, batch_size: int, seed: int):
        if batch_size > len(split):
            raise SupernetError(f"--batch-size {batch_size:g} exceeds the {len(split)} training examples; lower it")
        self.split, self.batch_size, self.seed = split, batch_size, seed
        self.steps_per_epoch = len(split) // batch_size
        self._epoch, self._order = -1, None

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, i = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._epoch, self._order = epoch, torch.as_tensor(rng.permutation(len(self.split)))
        idx = self._order[i * self.batch_size:(i + 1) * self.batch_size]
        return self.split.x[idx], self.split.y[idx]


def calibration_batches(split: Split, batch_size: int, n_batches: int, seed: int) -> list[torch.Tensor]:
    """A fixed set of training inputs for BN recalibration (same for every arch)."""
    rng = np.random.default_rng([seed, 7919])
    n = min(len(split), batch_size * n_batches)
    idx = torch.as_tensor(rng.permutation(len(split))[:n])
    return list(split.x[idx].split(batch_size))

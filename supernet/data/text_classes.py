"""Labelled text for text classifiers: ``--data text:FILE`` with a ``label_field`` (e.g. ``hf_encoder``).

``FILE`` is a ``.csv`` (a header row naming the columns) or ``.jsonl`` (one object per line) file, or a
folder of such files (sorted); each record holds a text (``text_field``) and a label (``label_field``).
Labels are class indices ``0..C-1``, or names: mapped through the model folder's ``config.json``
``label2id`` when it names them all, else numbered in sorted order. Each text is tokenised with the
model's tokenizer (its special tokens added), truncated and padded to ``seq_len`` ids. Records are
shuffled once with the seed, then ``val_fraction`` of them go to validation and as many to test.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch

from ..core.data_info import DataInfo
from ..core.errors import SupernetError
from .base import Split, SplitBatches, calibration_batches
from .text import load_tokenizer

SUFFIXES = (".csv", ".jsonl")


def read_records(path: Path, text_field: str, label_field: str) -> list[tuple[str, object]]:
    """``(text, label)`` of every record under ``path``, in sorted file order."""
    if not path.exists():
        raise SupernetError(f"text data {str(path)!r} does not exist")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES)
    if not files or any(f.suffix not in SUFFIXES for f in files):
        raise SupernetError(f"labelled text data {str(path)!r} must be .csv or .jsonl files")
    records = []
    for file in files:
        rows = _csv(file) if file.suffix == ".csv" else _jsonl(file)
        for n, row in rows:
            if not isinstance(row, dict) or not isinstance(row.get(text_field), str) or row.get(label_field) in (None, ""):
                raise SupernetError(f"{str(file)!r} record {n} lacks a text field {text_field!r} or a label field "
                                    f"{label_field!r}; set --text-field / --label-field")
            records.append((row[text_field], row[label_field]))
    return records


def _csv(file: Path):
    with open(file, newline="", encoding="utf-8", errors="replace") as fh:
        yield from enumerate(csv.DictReader(fh), 2)


def _jsonl(file: Path):
    for n, line in enumerate(file.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if line.strip():
            try:
                yield n, json.loads(line)
            except ValueError:
                raise SupernetError(f"{str(file)!r} line {n} is not JSON; a .jsonl file holds one object per line") from None


def label_ids(labels: list, model: str | None) -> tuple[list[int], list[str] | None]:
    """Class indices of ``labels`` (whole numbers as they are; names through the model's ``label2id``, else in
    sorted order) and the class names (None for indices)."""
    if all(isinstance(v, int) or (isinstance(v, str) and v.strip().lstrip("-").isdigit()) for v in labels):
        ids = [int(v) for v in labels]
        if min(ids) < 0:
            raise SupernetError(f"labels must be class indices >= 0, found {min(ids)}")
        return ids, None
    names = sorted({str(v) for v in labels})
    known = {}
    if model is not None and (Path(model) / "config.json").exists():
        known = json.loads((Path(model) / "config.json").read_text()).get("label2id") or {}
    mapping = {n: int(known[n]) for n in names} if all(n in known for n in names) else {n: i for i, n in enumerate(names)}
    return [mapping[str(v)] for v in labels], names


class TextClassData(SplitBatches):
    """Token ids ``(N, seq_len)`` and labels ``(N,)`` of a labelled text file, split train / val / test."""

    def __init__(self, path: str, tokenizer: str, seq_len: int, val_fraction: float, seed: int,
                 text_field: str = "text", label_field: str = "label"):
        self.path, self.model, self.seq_len = str(Path(path).expanduser().resolve()), tokenizer, seq_len
        tok = load_tokenizer(tokenizer)
        records = read_records(Path(self.path), text_field, label_field)
        held = max(1, int(round(len(records) * val_fraction)))
        if len(records) < 2 * held + 1:
            raise SupernetError(f"text data {self.path!r} has {len(records)} records: too few for train, val and test")
        labels, self.names = label_ids([r[1] for r in records], tokenizer)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        enc = tok([r[0] for r in records], truncation=True, max_length=seq_len, padding="max_length")["input_ids"]
        x = torch.tensor([ids + [pad] * (seq_len - len(ids)) for ids in enc], dtype=torch.long)
        y = torch.tensor(labels, dtype=torch.long)
        order = torch.as_tensor(np.random.default_rng([seed, 37]).permutation(len(y)))
        x, y = x[order], y[order]
        self.splits = {"val": Split(x[:held], y[:held]), "test": Split(x[held:2 * held], y[held:2 * held]),
                       "train": Split(x[2 * held:], y[2 * held:])}
        self.train, self.val, self.test = (self.splits[k] for k in ("train", "val", "test"))
        self.num_classes, self.max_token = int(y.max()) + 1, int(x.max())
        self.name = f"text:{self.path}"

    def info(self) -> DataInfo:
        return DataInfo(self.name, (self.seq_len,), num_classes=self.num_classes, max_token=self.max_token)

    def describe(self) -> dict:
        return {"data": self.name, "train": len(self.train), "val": len(self.val), "test": len(self.test),
                "input_shape": [self.seq_len], "classes": self.num_classes, "class_names": self.names,
                "tokenizer": self.model}

    def set_image_size(self, size: int) -> None:
        """Token sequences have no image size."""

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise SupernetError(f"unknown split {name!r}; use one of {sorted(self.splits)}")
        return self.splits[name]

    def eval_batches(self, name: str, batch_size: int):
        split = self.split(name)
        return zip(split.x.split(batch_size), split.y.split(batch_size))

    def calibration_batches(self, n_batches: int, batch_size: int, seed: int) -> list[torch.Tensor]:
        return calibration_batches(self.train, batch_size, n_batches, seed)

"""A local text corpus for language-model spaces: ``--data text:PATH``.

``PATH`` is a plain-text file, a ``.jsonl`` file (one JSON object per line; its ``text_field``
holds the text) or a folder of such files (``*.txt``, ``*.jsonl``, ``*.py``, ``*.md``; sorted,
recursively). Each document is tokenised with the model's own tokenizer (``--model``), an
end-of-sequence token appended, and the concatenated ids cut into blocks of ``seq_len + 1``
tokens: a block's first ``seq_len`` tokens are the input, its last ``seq_len`` the targets.
Blocks are shuffled once with the seed, then ``val_fraction`` of them go to validation and
as many to test. Batches follow :class:`supernet.data.base.BatchStream` (step k is a pure function
of seed and k), so resumed runs continue exactly.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..core.data_info import DataInfo
from ..core.errors import SupernetError
from .base import Split, SplitBatches, calibration_batches

SUFFIXES = (".txt", ".jsonl", ".py", ".md", ".rst")
EVAL_BATCH = 16  # sequences per evaluation batch: (B, T, V) logits stay small


def read_documents(path: Path, text_field: str) -> list[str]:
    """Every document under ``path`` (a file or a folder), in sorted file order."""
    if not path.exists():
        raise SupernetError(f"text data {str(path)!r} does not exist")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    if not files:
        raise SupernetError(f"text data folder {str(path)!r} holds no {'/'.join(SUFFIXES)} files")
    docs = []
    for file in files:
        text = file.read_text(encoding="utf-8", errors="replace")
        docs += _jsonl(text, file, text_field) if file.suffix == ".jsonl" else [text]
    return [d for d in docs if d.strip()]


def _jsonl(text: str, file: Path, field: str) -> list[str]:
    docs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise SupernetError(f"{str(file)!r} line {n} is not JSON; a .jsonl file holds one object per line") from None
        if not isinstance(record, dict) or not isinstance(record.get(field), str):
            raise SupernetError(f"{str(file)!r} line {n} has no text field {field!r}; set --text-field")
        docs.append(record[field])
    return docs


def load_tokenizer(model: str | None):
    """The tokenizer saved in the model folder ``model``."""
    if model is None:
        raise SupernetError("text data is tokenised with the model's own tokenizer: pass --model PATH")
    from transformers import AutoTokenizer
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as exc:
        raise SupernetError(f"cannot load the tokenizer of --model {model!r} ({str(exc).splitlines()[0]})") from None
    if len(tokenizer) == 0 or not tokenizer("a b", add_special_tokens=False)["input_ids"]:
        raise SupernetError(f"--model {model!r} has no usable tokenizer (its folder lacks tokenizer files such as "
                            "tokenizer.json); save the tokenizer beside the model (tokenizer.save_pretrained)")
    return tokenizer


class TextData(SplitBatches):
    """Token blocks of a text corpus, split train / val / test; the data protocol of :mod:`supernet.data`."""

    num_classes = None

    def __init__(self, path: str, tokenizer: str, seq_len: int, val_fraction: float, seed: int,
                 text_field: str = "text"):
        self.path, self.model, self.seq_len = str(Path(path).expanduser().resolve()), tokenizer, seq_len
        tokenizer = load_tokenizer(tokenizer)
        eos = tokenizer.eos_token_id
        ids = []
        for doc in read_documents(Path(self.path), text_field):
            ids += tokenizer(doc, add_special_tokens=False)["input_ids"] + ([eos] if eos is not None else [])
        blocks = len(ids) // (seq_len + 1)
        held = max(1, int(round(blocks * val_fraction)))
        if blocks < 2 * held + 1:
            raise SupernetError(f"text data {self.path!r} gives {blocks} blocks of {seq_len + 1} tokens ({len(ids)} "
                                "tokens): too few for train, val and test splits; add text or lower --seq-len")
        tokens = torch.tensor(ids[:blocks * (seq_len + 1)], dtype=torch.long).view(blocks, seq_len + 1)
        tokens = tokens[torch.as_tensor(np.random.default_rng([seed, 31]).permutation(blocks))]
        parts = {"val": tokens[:held], "test": tokens[held:2 * held], "train": tokens[2 * held:]}
        self.splits = {k: Split(v[:, :-1].contiguous(), v[:, 1:].contiguous()) for k, v in parts.items()}
        self.train, self.val, self.test = (self.splits[k] for k in ("train", "val", "test"))
        self.tokens, self.max_token = len(ids), int(tokens.max())
        self.name = f"text:{self.path}"

    def info(self) -> DataInfo:
        return DataInfo(self.name, (self.seq_len,), max_token=self.max_token)

    def describe(self) -> dict:
        return {"data": self.name, "train": len(self.train), "val": len(self.val), "test": len(self.test),
                "input_shape": [self.seq_len], "tokens": self.tokens, "tokenizer": self.model}

    def set_image_size(self, size: int) -> None:
        """Token sequences have no image size."""

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise SupernetError(f"unknown split {name!r}; use one of {sorted(self.splits)}")
        return self.splits[name]

    def eval_batches(self, name: str, batch_size: int):
        """``(ids, targets)`` batches of at most :data:`EVAL_BATCH` sequences, in order."""
        split, size = self.split(name), min(batch_size, EVAL_BATCH)
        return zip(split.x.split(size), split.y.split(size))

    def calibration_batches(self, n_batches: int, batch_size: int, seed: int) -> list[torch.Tensor]:
        """Fixed training sequences (at most :data:`EVAL_BATCH` per batch): channel importance, BN if any."""
        return calibration_batches(self.train, min(batch_size, EVAL_BATCH), n_batches, seed)

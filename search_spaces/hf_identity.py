"""The identity of a Hugging Face model folder: a hash over its config, weights, tokenizer and image
processor files (shared by the ``llm_lora`` and ``hf_encoder`` spaces).

A supernet fits one base model and one tokenizer (or image processor); its checkpoints record this hash and
every later command (eval, search, export) refuses a folder whose hash changed. Hashing
gigabytes on every command would cost minutes, so each file's SHA-256 is cached under the user's
cache folder (``$SUPERNET_CACHE``, else ``$XDG_CACHE_HOME/supernet``, else ``~/.cache/supernet``),
keyed by its absolute path, size and modification time (ns): an unchanged file is not re-read.

    hash = "v2:" + SHA-256 over (name, SHA-256(file bytes)) of every identity file, in name order

Hashes recorded before the tokenizer was covered (plain hex: names and bytes of ``config.json`` and
the weight files) are still checked, the old way.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from supernet.io.files import atomic_write_json

VERSION = "v2:"
WEIGHT_SUFFIXES = (".safetensors", ".bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "tokenizer.model", "vocab.json", "vocab.txt", "merges.txt", "spiece.model", "chat_template.jinja")
PROCESSOR_FILES = ("preprocessor_config.json",)
CACHE_FILE = "file-hashes.json"


def identity_files(folder: str | os.PathLike) -> list[Path]:
    """``config.json``, the weights (shards and their index included), the tokenizer and image processor
    files, by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and (
        p.name == "config.json" or p.suffix in WEIGHT_SUFFIXES or p.name.endswith(".index.json")
        or p.name in TOKENIZER_FILES or p.name in PROCESSOR_FILES))


def tokenizer_files(folder: str | os.PathLike) -> list[str]:
    """The names of the tokenizer files in ``folder`` (empty: it has no tokenizer)."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name in TOKENIZER_FILES)


def processor_files(folder: str | os.PathLike) -> list[str]:
    """The names of the image processor files in ``folder`` (empty: it has none)."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name in PROCESSOR_FILES)


def model_hash(folder: str | os.PathLike) -> str:
    """``v2:`` + SHA-256 over the name and content hash of every identity file (cached per file)."""
    cache = _Cache()
    digest = hashlib.sha256()
    for path in identity_files(folder):
        digest.update(path.name.encode() + b"\0" + cache.file_hash(path).encode())
    cache.save()
    return VERSION + digest.hexdigest()


def matches(folder: str | os.PathLike, recorded: str) -> tuple[bool, str]:
    """``(same, found)``: whether ``folder`` still has the ``recorded`` hash (of either version), and its hash."""
    if recorded.startswith(VERSION):
        found = model_hash(folder)
    else:
        found = legacy_hash(folder)
    return found == recorded, found


def legacy_hash(folder: str | os.PathLike) -> str:
    """The hash of runs saved before ``v2``: SHA-256 over names and bytes of config.json and the weight files."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).iterdir() if p.name == "config.json" or p.suffix in WEIGHT_SUFFIXES):
        digest.update(path.name.encode())
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def cache_folder() -> Path:
    if os.environ.get("SUPERNET_CACHE"):
        return Path(os.environ["SUPERNET_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "supernet"


class _Cache:
    """Per-file SHA-256 by ``path -> [size, mtime_ns, sha]``; unreadable or unwritable caches are ignored."""

    def __init__(self):
        self.path = cache_folder() / CACHE_FILE
        try:
            self.entries = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}
        self.changed = False

    def file_hash(self, path: Path) -> str:
        stat, key = path.stat(), str(path.resolve())
        known = self.entries.get(key)
        if isinstance(known, list) and known[:2] == [stat.st_size, stat.st_mtime_ns]:
            return known[2]
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
        self.entries[key], self.changed = [stat.st_size, stat.st_mtime_ns, digest.hexdigest()], True
        return digest.hexdigest()

    def save(self) -> None:
        if not self.changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path, self.entries)
        except OSError:
            pass  # a read-only home: hash again next time

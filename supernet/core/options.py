"""Checks of numeric options, shared by every config: one clear line naming the flag and its range.

Torch-free, so the CLI's parser is built without importing torch (``supernet --help`` stays fast).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from .errors import SupernetError


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_number(name: str, value, low, low_ok: bool, high, high_ok: bool, whole: bool) -> None:
    """One option finite, whole where it counts something, and within ``[low, high]`` (ends as allowed)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SupernetError(f"{flag(name)} must be a finite number, got {value!r}")
    if whole and value != int(value):
        raise SupernetError(f"{flag(name)} must be a whole number, got {value!r}")
    if value < low or (value == low and not low_ok) or value > high or (value == high and not high_ok):
        raise SupernetError(f"{flag(name)} must be {bounds(low, low_ok, high, high_ok)}, got {value!r}")


def bounds(low, low_ok: bool, high, high_ok: bool) -> str:
    """``>= 1 and <= 1000``, or ``between 0 and 1 (exclusive)``."""
    if not (low_ok or high_ok):
        return f"between {_num(low)} and {_num(high)} (exclusive)"
    return f"{'>=' if low_ok else '>'} {_num(low)} and {'<=' if high_ok else '<'} {_num(high)}"


def _num(value) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def check_numbers(cfg, ranges: dict) -> None:
    """Every numeric option of ``cfg`` named in ``ranges`` (None means unset and passes)."""
    for name, limits in ranges.items():
        value = getattr(cfg, name)
        if value is not None:
            check_number(name, value, *limits)


@dataclass(frozen=True)
class SpaceOptions:
    """Base of a space's own training options (e.g. ``llm_lora``'s base model and sequence length).

    A subclass is a frozen dataclass; each field's ``metadata`` may hold ``help`` (the CLI's help
    line, which turns the field into a ``supernet train`` flag; a ``bool`` field becomes
    ``--name`` / ``--no-name``), ``range`` (a tuple as in :func:`check_number`), ``choices`` (the
    allowed values) and ``path=True`` (an input path: stored absolute, never written into).
    Defaults here: :meth:`from_dict` (unknown names refused), :meth:`resolved`, :meth:`input_paths`,
    and :meth:`reader_options` (keyword options for the data reader, e.g. a tokenizer).
    """

    @classmethod
    def from_dict(cls, values: dict, space: str = "") -> "SpaceOptions":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise SupernetError(f"{flag(unknown[0])} is not an option of space {space or cls.__name__!r}; its "
                                f"options are {[flag(n) for n in sorted(names)]}")
        options = cls(**values)
        options.check()
        return options

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def check(self) -> None:
        """Every numeric field with a ``range`` in its metadata within it, every field with ``choices`` one of them,
        every ``bool`` field a bool."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if "range" in f.metadata and value is not None:
                check_number(f.name, value, *f.metadata["range"])
            if "choices" in f.metadata and value not in f.metadata["choices"]:
                raise SupernetError(f"{flag(f.name)} must be one of {list(f.metadata['choices'])}, got {value!r}")
            if str(f.type) == "bool" and not isinstance(value, bool):
                raise SupernetError(f"{flag(f.name)} is true or false, got {value!r}")

    def resolved(self) -> "SpaceOptions":
        """The options with every path field absolute (a run works from any folder)."""
        paths = {f.name: str(Path(getattr(self, f.name)).expanduser().resolve()) for f in dataclasses.fields(self)
                 if f.metadata.get("path") and getattr(self, f.name) is not None}
        return dataclasses.replace(self, **paths)

    def input_paths(self) -> list[str]:
        """Paths the options read (a run folder may not be, contain or sit inside them)."""
        return [getattr(self, f.name) for f in dataclasses.fields(self)
                if f.metadata.get("path") and getattr(self, f.name) is not None]

    def reader_options(self) -> dict:
        """Keyword options for the data reader (none by default)."""
        return {}


LEGACY_SPACE_OPTIONS = ("model", "seq_len", "text_field")  # top-level training options of runs saved before 0.2


def saved_space_options(train: dict) -> dict:
    """A saved run's space options: ``train["space_options"]``, or, for a run saved when the language
    model options were training options, those of them that were set."""
    if "space_options" in train:
        return dict(train["space_options"])
    if train.get("model") is None:
        return {}
    return {k: train[k] for k in LEGACY_SPACE_OPTIONS if k in train}

"""Options declared once: a config field holds its default, its check (a named :class:`Range` or
``choices``) and its help (:func:`option`); :func:`check_fields` checks them in one clear line naming
the flag, and the CLI builds its flags from the same fields.

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


@dataclass(frozen=True)
class Range:
    """The allowed values of a numeric option: from ``low`` to ``high``, each end allowed or not, whole
    numbers only when ``integer`` (a count)."""

    low: float
    high: float
    low_inclusive: bool = True
    high_inclusive: bool = True
    integer: bool = False

    def describe(self) -> str:
        """``>= 1 and <= 1000``, or ``between 0 and 1 (exclusive)``."""
        if not (self.low_inclusive or self.high_inclusive):
            return f"between {_num(self.low)} and {_num(self.high)} (exclusive)"
        return (f"{'>=' if self.low_inclusive else '>'} {_num(self.low)} and "
                f"{'<=' if self.high_inclusive else '<'} {_num(self.high)}")

    def holds(self, value) -> bool:
        return not (value < self.low or (value == self.low and not self.low_inclusive) or value > self.high
                    or (value == self.high and not self.high_inclusive))


def count(low: int, high: int) -> Range:
    """Whole numbers from ``low`` to ``high``, both allowed."""
    return Range(low, high, integer=True)


# Named ranges shared by several options. Upper bounds are generous sanity limits: a value beyond one
# is a typo, not a plan.
STEPS = count(1, 10**9)
NONNEGATIVE_STEPS = count(0, 10**9)
BATCH = count(1, 10**6)
SEED = count(0, 2**32 - 1)
CALIB_BATCHES = count(1, 10**5)
THREADS = count(1, 1024)
FRACTION = Range(0, 1, True, False)  # [0, 1)
OPEN_UNIT = Range(0, 1, False, False)  # (0, 1)
LEARNING_RATE = Range(0, 10, False, True)  # (0, 10]
CLIP = Range(0, 1e6)  # [0, 1e6], 0 = off

# The precisions of computation, and of a space's frozen weights: torch-free names here, their dtypes in
# :data:`supernet.core.placement.DTYPES`.
PRECISION_NAMES = ("fp32", "bf16", "fp16")

DEVICE_HELP = "auto (a visible GPU, else the CPU) | cpu | cuda | cuda:N"
PRECISION_HELP = "fp32 | bf16 | fp16 (autocast; weights stay fp32; fp16 adds a GradScaler)"
CHANNELS_LAST_HELP = ("channels-last memory format for 2-D convolutions on a GPU (faster with bf16/fp16; CPU "
                      "training always runs channels-last)")
THREADS_HELP = "torch CPU threads (default: torch's choice)"


def check_number(name: str, value, allowed: Range) -> None:
    """One option finite, whole where it counts something, and within ``allowed``; else one line naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SupernetError(f"{flag(name)} must be a finite number, got {value!r}")
    if allowed.integer and value != int(value):
        raise SupernetError(f"{flag(name)} must be a whole number, got {value!r}")
    if not allowed.holds(value):
        raise SupernetError(f"{flag(name)} must be {allowed.describe()}, got {value!r}")


def bounds(low, low_ok: bool, high, high_ok: bool) -> str:
    """``>= 1 and <= 1000``, or ``between 0 and 1 (exclusive)`` (:meth:`Range.describe`)."""
    return Range(low, high, low_ok, high_ok).describe()


def _num(value) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def option(default=dataclasses.MISSING, *, help: str, range: Range | None = None, choices=None,
           default_factory=dataclasses.MISSING, **metadata):
    """A config field with its default, its check and its help in one place (as PEFT's ``LoraConfig``
    declares its fields): ``metadata`` holds ``help`` (the CLI's help line), ``range`` (a :class:`Range`),
    ``choices`` (the allowed values) and any further keys (e.g. ``path=True``, ``cli=False``)."""
    meta = {"help": help, **metadata}
    if range is not None:
        meta["range"] = range
    if choices is not None:
        meta["choices"] = tuple(choices)
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def same_option(owner, name: str, **changes):
    """A field declared as ``owner``'s field ``name`` is (its help, range and choices; its default unless
    ``default=`` is given): one declaration for an option that two dataclasses hold."""
    f = {f.name: f for f in dataclasses.fields(owner)}[name]
    default = changes.pop("default", f.default)
    return dataclasses.field(default=default, metadata={**f.metadata, **changes})


def as_range(allowed) -> Range:
    """A :class:`Range`, or one from the positional tuple ``(low, low allowed?, high, high allowed?, whole?)`` that
    a space's options written before :class:`Range` may still declare."""
    if isinstance(allowed, Range):
        return allowed
    low, low_ok, high, high_ok, whole = allowed
    return Range(low, high, low_ok, high_ok, whole)


def check_fields(obj, names=None) -> None:
    """Every field of ``obj`` (or those in ``names``) against its metadata: a ``range`` (None passes: unset),
    ``choices``, and ``bool`` fields a bool. One clear line for the first that fails."""
    for f in dataclasses.fields(obj):
        if names is not None and f.name not in names:
            continue
        value = getattr(obj, f.name)
        if "range" in f.metadata and value is not None:
            check_number(f.name, value, as_range(f.metadata["range"]))
        if "choices" in f.metadata and value not in f.metadata["choices"]:
            raise SupernetError(f"{flag(f.name)} must be one of {list(f.metadata['choices'])}, got {value!r}")
        if str(f.type) == "bool" and not isinstance(value, bool):
            raise SupernetError(f"{flag(f.name)} is true or false, got {value!r}")


@dataclass(frozen=True)
class SpaceOptions:
    """Base of a space's own training options (e.g. ``llm_lora``'s base model and sequence length).

    A subclass is a frozen dataclass; each field's ``metadata`` (declared with :func:`option`) may hold
    ``help`` (the CLI's help line, which turns the field into a ``supernet train`` flag; a ``bool`` field
    becomes ``--name`` / ``--no-name``), ``range`` (a :class:`Range`), ``choices`` (the allowed values)
    and ``path=True`` (an input path: stored absolute, never written into).
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
        every ``bool`` field a bool (:func:`check_fields`)."""
        check_fields(self)

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

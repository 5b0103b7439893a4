"""What every subcommand's parser shares: one-line errors, checked whole numbers, device options."""
from __future__ import annotations

import argparse
import re

from ..core.options import CHANNELS_LAST_HELP, DEVICE_HELP, PRECISION_HELP, THREADS_HELP, bounds
from ..core.options import THREADS as THREAD_RANGE


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``error: ...``, exit 2, no usage block), and values that
    start with a minus sign (``-1M``, ``-5``) read as values, so that their check names the fault."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def error(self, message):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def whole(low: int, high: int):
    """An argparse ``type``: a whole number in ``[low, high]``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {bounds(low, True, high, True)}, got {value}")
        return value
    return parse


DATA_HELP = ("imagefolder:PATH | packed:PATH: the data for BN recalibration and the validation score, in place of "
             "the run's own (needed by a run of `supernet import`; its images normalised with ImageNet's mean/std "
             "and its classes those of the run's classifier, 1000 for OFA's nets, else refused)")


def add_data(p, extra: str = "") -> None:
    """``--data``: a set replacing the run's own (:func:`supernet.evaluation.recalibrated.checkpoint_data`)."""
    p.add_argument("--data", metavar="imagefolder:PATH|packed:PATH", help=DATA_HELP + extra)


CALIB_BATCHES = whole(1, 10**5)
WORKERS = whole(1, 4096)
THREADS = whole(int(THREAD_RANGE.low), int(THREAD_RANGE.high))


def add_placement(p, channels_last: bool = True, threads: bool = True) -> None:
    """``--device``, ``--precision`` (and ``--channels-last``, ``--threads``): turned into one Placement by the
    API (``supernet.core.placement.Placement.make``)."""
    p.add_argument("--device", default="auto", help=DEVICE_HELP + " (default: %(default)s)")
    p.add_argument("--precision", default="fp32", help=PRECISION_HELP + " (default: %(default)s)")
    if channels_last:
        p.add_argument("--channels-last", action="store_true", help=CHANNELS_LAST_HELP)
    if threads:
        p.add_argument("--threads", type=THREADS, help=THREADS_HELP)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


KINDS = {"int": int, "float": float, "int | None": int, "float | None": float}


def add_field(p, f, *, dest: str | None = None, default=None, shown=None, metavar: str | None = None,
              choices: bool = True) -> None:
    """The flag of a config field declared with :func:`supernet.core.options.option`: its help, its choices and
    its type from the field (a ``bool`` becomes ``--name`` / ``--no-name``); ``default`` is the parsed value when
    the flag is absent (``argparse.SUPPRESS``: absent from the namespace), ``shown`` the default the help names
    (None: none named); ``choices=False`` leaves the choices to the config's own check."""
    kw = {"dest": dest} if dest else {}
    text = (f.metadata["help"] + ("" if shown is None else f" (default: {shown})")).replace("%", "%%")
    if str(f.type) == "bool":
        p.add_argument(flag(f.name), action=argparse.BooleanOptionalAction, default=default, help=text, **kw)
        return
    metavar = f.metadata.get("metavar", metavar)
    if metavar:
        kw["metavar"] = metavar
    p.add_argument(flag(f.name), type=KINDS.get(str(f.type), str), default=default, choices=f.metadata.get("choices") if choices else None,
                   help=text, **kw)

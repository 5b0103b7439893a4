"""What every subcommand's parser shares: one-line errors, checked whole numbers, device options."""
from __future__ import annotations

import argparse
import re

from ..core.options import bounds

DEVICE_HELP = "auto (a visible GPU, else the CPU) | cpu | cuda | cuda:N"
PRECISION_HELP = "fp32 | bf16 | fp16 (autocast; weights stay fp32; fp16 adds a GradScaler)"
CHANNELS_LAST_HELP = ("channels-last memory format for 2-D convolutions on a GPU (faster with bf16/fp16; CPU "
                      "training always runs channels-last)")


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
THREADS = whole(1, 1024)


def add_placement(p, channels_last: bool = True) -> None:
    """``--device``, ``--precision`` (and ``--channels-last``): turned into one Placement by the API."""
    p.add_argument("--device", default="auto", help=DEVICE_HELP + " (default: %(default)s)")
    p.add_argument("--precision", default="fp32", help=PRECISION_HELP + " (default: %(default)s)")
    if channels_last:
        p.add_argument("--channels-last", action="store_true", help=CHANNELS_LAST_HELP)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")

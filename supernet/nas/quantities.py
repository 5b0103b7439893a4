"""Numbers with K, M or G suffixes (``20M``), read and written: budgets and counts."""
from __future__ import annotations

import math
import re

from ..core.errors import SupernetError

# -- quantities ----------------------------------------------------------------------
_SUFFIX = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9}


def parse_quantity(text: str | float, what: str = "value") -> float:
    """``"20M" -> 2e7``: a positive finite number with an optional K, M or G suffix (x1e3, 1e6, 1e9)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgG]?)\s*", str(text))
        if not match and re.fullmatch(r"\s*-\s*[0-9.]+.*", str(text)):
            raise SupernetError(f"{what} must be a positive number, got {text!r}")
        if not match:
            raise SupernetError(f"{what}: cannot read {text!r} as a number; use digits with an optional "
                                "K, M or G suffix, e.g. 20M or 1.5G")
        value = float(match.group(1)) * _SUFFIX[match.group(2).upper()]
    if not math.isfinite(value) or value <= 0:
        raise SupernetError(f"{what} must be a positive finite number, got {text!r}")
    return value


def format_quantity(value: float) -> str:
    """``20000000 -> "20M"``, ``1520000 -> "1.52M"``, ``0.93 -> "0.93"`` (3 significant digits)."""
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"

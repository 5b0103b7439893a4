"""Drift between a latency table's machine state and now, from its reference arch.

A table stores its reference arch measured in ``REFERENCE_ROUNDS`` rounds when it was built
(:func:`supernet.hardware.latency_table.measure_reference`). When a search starts, the same arch is
measured again the same way, and

    ratio = median_now / median_then,   noise = max(MIN_DRIFT, 2 * sqrt(se_then^2 + se_now^2)),
    se = 1.253 * (IQR / 1.349) / sqrt(n) / median

over the ``n`` round medians of one measurement: ``se`` is the relative standard error of their
median (a normal spread estimated from the interquartile range, which one burst of load in one
round does not move), so ``noise`` is a two-standard-error bound on the ratio.
``|ratio - 1| > noise``: the machine drifted (other load, a clock or power state, another
library build with the same versions); the table's predictions are multiplied by ``ratio`` for
this search, and a warning says so. Otherwise the drift is within the measurement's own noise
and predictions are left as they are (scaling by a noisy ratio would only add noise). A table
built before references were stored cannot be checked; that is reported too.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .latency_table import LatencyTable, measure_reference
from .rounds import latency_ms
from .timers import Timer

MIN_DRIFT = 0.05  # below 5 % a uniform slow-down is not told apart from placement noise


@dataclass(frozen=True)
class Drift:
    """The outcome of the reference check: ``status`` is ``unchecked``, ``steady`` or ``corrected``;
    ``scale`` is what this search multiplies the table's predictions by (1 unless corrected)."""

    status: str
    scale: float = 1.0
    ratio: float | None = None
    then_ms: float | None = None
    now_ms: float | None = None
    then_spread_ms: list | None = None
    now_spread_ms: list | None = None
    noise: float | None = None
    message: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def relative_error(result: dict) -> float:
    """Relative standard error of a measurement's latency from its round values ``round_ms`` (0 without)."""
    rounds = np.asarray(result.get("round_ms") or [latency_ms(result)], dtype=float)
    iqr = np.subtract(*np.percentile(rounds, [75, 25]))
    return float(1.253 * (iqr / 1.349) / np.sqrt(len(rounds)) / latency_ms(result))


def compare(then: dict, now: dict) -> Drift:
    """:class:`Drift` of two measurements of the reference arch (see the module docstring)."""
    then_ms, now_ms = latency_ms(then), latency_ms(now)
    ratio = now_ms / then_ms
    noise = max(MIN_DRIFT, 2 * float(np.hypot(relative_error(then), relative_error(now))))
    args = dict(ratio=ratio, then_ms=then_ms, now_ms=now_ms, then_spread_ms=then.get("spread_ms"),
                now_spread_ms=now.get("spread_ms"), noise=noise)
    seen = (f"reference arch {then_ms:.4g} ms when the table was built, {now_ms:.4g} ms now "
            f"(p10-p90 {_span(now)})")
    if abs(ratio - 1) <= noise:
        return Drift("steady", 1.0, message=f"{seen}: within the +-{100 * noise:.0f}% noise, predictions unscaled",
                     **args)
    how = "slower" if ratio > 1 else "faster"
    return Drift("corrected", ratio, message=f"this machine runs {100 * abs(ratio - 1):.0f}% {how} than when the "
                 f"latency table was built ({seen}); its predictions are scaled by {ratio:.3f} for this search; "
                 "rebuild the table (`supernet latency build`) if this lasts", **args)


def _span(result: dict) -> str:
    lo, hi = result.get("spread_ms") or (latency_ms(result),) * 2
    return f"{lo:.4g}-{hi:.4g} ms"


def check_drift(table: LatencyTable, space, measure=None, timer: Timer | None = None) -> Drift:
    """Re-measure ``table``'s reference arch here (``measure``: elsewhere, e.g. on a Ray node of the
    target; ``timer``: a stand-in clock) and compare it with the stored measurement."""
    if not table.reference:
        return Drift("unchecked", message="the latency table has no reference arch (it was built before tables "
                     "stored one), so drift since it was built cannot be checked; run `supernet latency build` "
                     "with the same options again to add one")
    if space.make(table.reference["arch"]) != space.median():
        return Drift("unchecked", message="the latency table's reference arch is not this space's median arch; "
                     "rebuild the table")
    return compare(table.reference, measure_reference(table, space, measure, timer))


"""Benchmark: building predictor features for many archs, per arch (the old way) vs vectorised.

15,000 random archs of the ``mobilenet``/``mnist1d`` space (37 positions). ``per_arch`` is the
previous implementation, kept here as the reference: for every arch validate it, encode it,
ask the space which positions are inactive, and fill one row. ``vectorised`` is
``FeatureMap(space, kind)(archs)``: validation (memoised for archs the space produced), one
flattening pass, and array operations per block of columns. Two cases: *warm* archs were
produced by the space (``sample``/``decode``, as in a search), *cold* archs are fresh values
(``Arch(dict)``, as read from a file), so every one is validated. Also timed: ``predict`` of a
fitted ridge on the 15,000 archs. Median of ``--repeats`` runs each; the matrices must agree.

    python -m benchmarks.bench_features [--archs 15000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

from predictors import FeatureMap, make_predictor  # noqa: E402
from supernet.core.arch import Arch  # noqa: E402
from supernet.core.registry import get_space, space_config  # noqa: E402
from supernet.io.files import atomic_write_json  # noqa: E402


def per_arch(space, kind: str, archs) -> np.ndarray:
    """The reference: one arch at a time (the implementation before vectorisation)."""
    choices = [d.choices for d in space.dimensions for _ in range(d.positions)]
    offsets = np.cumsum([0] + [len(c) for c in choices])
    width = int(offsets[-1]) if kind == "onehot" else len(choices)
    out = np.zeros((len(archs), width))
    for row, arch in enumerate(archs):
        arch = space.make(dict(arch))
        code = np.array([d.choices.index(v) if v in d.choices else 0 for d in space.dimensions
                         for v in (arch[d.name] if d.length else [arch[d.name]])])
        inactive = space.inactive(arch)
        active = np.array([i not in inactive.get(d.name, set()) for d in space.dimensions for i in range(d.positions)])
        if kind == "ordinal":
            out[row] = np.where(active, [c[i] for c, i in zip(choices, code)], 0)
        else:
            out[row, (offsets[:-1] + code)[active]] = 1.0
    return out


def timed(fn, repeats: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), value


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", type=int, default=15000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_features.json")
    args = p.parse_args(argv)
    build = lambda: get_space("mobilenet").build_space(space_config("mobilenet", "mnist1d"))  # noqa: E731
    space = build()
    rng = np.random.default_rng(0)
    warm = [space.sample(rng) for _ in range(args.archs)]
    result = {"archs": args.archs, "n_var": space.n_var, "repeats": args.repeats}
    for kind in ("ordinal", "onehot"):
        ref_s, ref = timed(lambda: per_arch(build(), kind, warm), args.repeats)
        warm_s, X = timed(lambda: FeatureMap(space, kind)(warm), args.repeats)
        cold_s, Xc = timed(lambda: FeatureMap(build(), kind)([Arch(a.to_dict()) for a in warm]), args.repeats)
        assert np.array_equal(ref, X) and np.array_equal(ref, Xc), "vectorised features differ from the reference"
        result[kind] = {"per_arch_s": ref_s, "vectorised_warm_s": warm_s, "vectorised_cold_s": cold_s,
                        "speedup_warm": ref_s / warm_s, "speedup_cold": ref_s / cold_s}
        print(f"{kind:8s} per arch {ref_s:.2f} s   vectorised: warm {warm_s:.3f} s ({ref_s / warm_s:.0f}x), "
              f"cold {cold_s:.3f} s ({ref_s / cold_s:.1f}x)")
    ridge = make_predictor("ridge", space).fit(warm[:200], rng.normal(size=200))
    predict_s, _ = timed(lambda: ridge.predict(warm), args.repeats)
    result["ridge_predict_warm_s"] = predict_s
    print(f"ridge predict of {args.archs} archs: {predict_s:.3f} s")
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

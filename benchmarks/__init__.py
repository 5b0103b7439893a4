"""Benchmarks and reproducible experiments: each module is run as ``python -m benchmarks.<name>``
from the repository root and writes its JSON into :data:`RESULTS` (``benchmarks/results/``).

Not installed with the engine (``setup.cfg`` packages only ``supernet``, ``search_spaces`` and
``predictors``); tests import it as a package from the repository root.
"""
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

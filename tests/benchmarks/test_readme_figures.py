"""The README's figures are the stored ones, and the pipeline that produced them still
reproduces the stored figures of its quick run (``make check-readme`` runs the same checks)."""
import pytest
import copy
import json

from benchmarks import readme_figures


def test_readme_shows_the_stored_figures():
    figures = json.loads(readme_figures.FIGURES.read_text())
    assert readme_figures.check_readme(figures) == []
    changed = copy.deepcopy(figures)
    changed["demo"]["rows"][0]["test_accuracy"] += 0.001
    assert "demo figures differ" in readme_figures.check_readme(changed)[0]


@pytest.mark.slow
def test_quick_run_reproduces_its_stored_figures_under_two_forced_cpu_capabilities():
    """The check passes whichever kernels torch dispatches to (forced here: AVX2 and the plain default), and
    still fails when the numerics change: a loss of the first steps moved by 1e-4, or, on the stored numerics
    profile, any figure."""
    stored = json.loads(readme_figures.FIGURES.read_text())["quick"]
    for capability in ("avx2", "default"):
        measured = readme_figures.measure_quick(capability)
        assert measured["profile"]["capability"].lower() == capability
        assert readme_figures.differences(stored, measured) == [], capability
    moved = copy.deepcopy(stored)
    moved["early_losses"][1]["loss/smallest"] += 1e-4
    assert "loss/smallest at step 1" in readme_figures.differences(moved, measured)[0]
    same_profile = {**stored, "last_loss_largest": stored["last_loss_largest"] * 1.001}
    assert "loss of the largest arch" in readme_figures.differences(same_profile, {**stored})[0]

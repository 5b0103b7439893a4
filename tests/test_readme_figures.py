"""The README's figures are the stored ones, and the pipeline that produced them still
reproduces the stored figures of its quick run (``make check-readme`` runs the same checks)."""
import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import readme_figures  # noqa: E402


def test_readme_shows_the_stored_figures():
    figures = json.loads(readme_figures.FIGURES.read_text())
    assert readme_figures.check_readme(figures) == []
    changed = copy.deepcopy(figures)
    changed["demo"]["rows"][0]["test_accuracy"] += 0.001
    assert "demo figures differ" in readme_figures.check_readme(changed)[0]


def test_quick_run_reproduces_its_stored_figures():
    stored = json.loads(readme_figures.FIGURES.read_text())["quick"]
    assert readme_figures.differences(stored, readme_figures.measure_quick()) == []
    drifted = {**stored, "last_loss_largest": stored["last_loss_largest"] * 1.001}
    assert "loss of the largest arch" in readme_figures.differences(stored, drifted)[0]

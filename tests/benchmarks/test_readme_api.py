"""README's "Python API and CLI, side by side": every Python cell runs, in order, in a fresh folder
(issue 32.8), given the inputs the README names (an image folder, a model folder, a corpus). Only
the sizes shrink: configs get few steps and evaluations, measurements few repeats."""
import functools
import html
import shutil
from pathlib import Path

import pytest

import supernet

README = Path(__file__).resolve().parents[2] / "README.md"


def api_cells() -> list[str]:
    """The first column of the side-by-side table, as code (``<br>`` separates lines)."""
    text = README.read_text()
    section = text[text.index("## Python API and CLI, side by side"):]
    rows = section[section.index("| Python | CLI |"):].split("\n\n")[0].splitlines()[2:]
    cells = []
    for row in rows:
        python = row.split(" | ")[0].removeprefix("| ")
        cells.append("\n".join(html.unescape(part.strip("`")) for part in python.split("<br>")))
    return cells


def test_the_readme_names_each_cell_it_runs():
    cells = api_cells()
    assert len(cells) >= 14 and cells[0].startswith("from supernet import TrainConfig, train")
    assert any("export_from_search(" in c for c in cells) and any("measure_arch(" in c for c in cells)
    assert not any("..." in c for c in cells)  # no elided arguments: each cell is what a user types


def smaller(monkeypatch, name, **fixed):
    """``supernet.<name>`` with ``fixed`` keyword arguments imposed (what ``from supernet import`` gets)."""
    real = getattr(supernet, name)
    monkeypatch.setattr(supernet, name, functools.wraps(real)(lambda *a, **kw: real(*a, **{**kw, **fixed})))


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    """A fresh folder holding the README's inputs: data/digits, data/mine, models/llama, corpus/, runs/ofa, my-bert
    and reviews.csv."""
    import csv

    from search_spaces.llm_lora.testing import build_model, save_model, train_tokenizer
    from tests.support import write_images
    from tests.support.hf_encoder import TEXTS, save_kind
    from tests.support.llm import TEXT
    save_kind(tmp_path / "my-bert", "bert", max_positions=128)
    with open(tmp_path / "reviews.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("text", "label")] + [(t, "abc"[i % 3]) for i, t in enumerate(TEXTS * 2)])
    write_images(tmp_path / "data" / "digits" / "train", per_class=4)
    tokenizer = train_tokenizer(TEXT, vocab_size=300)
    save_model(tmp_path / "models" / "llama", build_model(len(tokenizer), hidden=32, layers=4, intermediate=64),
               tokenizer)
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.txt").write_text("".join(TEXT) * 20)
    monkeypatch.chdir(tmp_path)
    shutil.copytree("data/digits", "data/mine")
    from supernet import TrainConfig, train  # runs/ofa: a run of the image space to start from (import stands in)
    train(TrainConfig(data="imagefolder:data/digits", variant="tiny2d", steps=1, batch_size=8, calib_batches=1,
                      data_workers=0, threads=1, tensorboard=False, progress=False), "runs/ofa")
    return tmp_path


@pytest.mark.slow
def test_readme_api_cells_run_in_order_in_a_fresh_folder(inputs, monkeypatch):
    run = dict(threads=1, tensorboard=False, progress=False)
    train_config, search_config = supernet.TrainConfig, supernet.SearchConfig

    def small_train(**kw):  # the mobilenet runs on its tiny variants (1-D signals, or images)
        tiny = "tiny2d" if kw.get("data", "").startswith("imagefolder:") else "tiny"
        variant = {"variant": tiny} if kw.get("space", "mobilenet") == "mobilenet" else {}
        return train_config(**{**kw, **variant, "steps": 2, "batch_size": 8, "calib_batches": 1, "data_workers": 0,
                               **run})

    def small_search(**kw):  # a latency budget in ms holds on an idle machine: here any time passes
        budgets = {n: 1e6 if n == "latency" else b for n, b in kw.get("budgets", {}).items()}
        return search_config(**{**kw, "budgets": budgets, "evaluations": 6, "initial": 2, "per_round": 2,
                                "uncertain": 1, "generations": 2, "population": 8})
    monkeypatch.setattr(supernet, "TrainConfig", small_train)
    monkeypatch.setattr(supernet, "SearchConfig", small_search)
    smaller(monkeypatch, "FinetuneConfig", steps=2, calib_batches=1, threads=1)
    smaller(monkeypatch, "MeasureConfig", threads=1, warmup=0, repeats=3, rounds=1, unit_rounds=1)
    smaller(monkeypatch, "search", calib_batches=1, progress=False, tensorboard=False)
    smaller(monkeypatch, "evaluate", calib_batches=1)
    smaller(monkeypatch, "build_latency", archs=5, progress=False)
    namespace = {}
    for cell in api_cells():
        exec(compile(cell, "README cell", "exec"), namespace)  # noqa: S102  (the README's own code)
    assert (inputs / "exports" / "knee-ft" / "model.safetensors").is_file()
    assert (inputs / "runs" / "s-lat" / "pareto.json").is_file() and (inputs / "runs" / "llm" / "checkpoints").is_dir()
    import json
    bert = json.loads((inputs / "runs" / "bert" / "config.json").read_text())
    assert bert["space_config"]["hidden_fractions"] == [0.5, 0.75, 1.0]

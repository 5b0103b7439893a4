"""Helpers shared by the test folders: the CLI as a subprocess or in-process, one-line-error checks,
the tiny training config, small data writers, and the registry's test variants and inputs.

Fixtures live in ``tests/conftest.py``; plain functions live here and are imported
(``from tests.support import cli``)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from supernet.cli.main import main
from supernet.core.registry import get_space, space_names
from supernet.training.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_SPACE = REPO / "docs" / "example_space.py"


def tiny_variants():
    """Every registered space's test variants: ``tiny`` and any ``tiny*`` sibling."""
    return [(name, v) for name in space_names() for v in get_space(name).variants if v.startswith("tiny")]


def archs_of(space, n_random=2, seed=0):
    rng = np.random.default_rng(seed)
    return [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(n_random)]


def input_for(supernet, arch, batch=4, seed=0):
    """The space's example batch for ``arch`` (images or signals at its resolution, token ids...)."""
    return supernet.space.example_input(arch, batch, torch.Generator().manual_seed(seed))


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "supernet.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def assert_one_line_error(result, pattern):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    assert pattern in lines[0], lines[0]


def run_main(argv, capsys):
    """``(status, stderr lines)`` of the CLI run in this process (argparse exits become statuses)."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exc:
        status = exc.code
    return status, capsys.readouterr().err.strip().splitlines()


def assert_refused(status, err, pattern):
    assert status == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert pattern in err[0], err[0]


def save_npz(path, x, y, **more):
    np.savez(path, x=np.asarray(x, dtype=np.float32), y=y, **more)
    return str(path)


def tiny_cfg(data, **kw):
    base = dict(data=data, variant="tiny", steps=8, batch_size=32, lr=0.05, warmup_steps=2, checkpoint_every=4,
                calib_batches=1, tensorboard=False, progress=False, seed=3)
    return TrainConfig(**{**base, **kw})


def step_losses(run):
    rows = [json.loads(line) for line in open(run / "log.jsonl")]
    by_step = {r["step"]: r for r in rows if "loss/largest" in r or "loss/uniform" in r}
    return [by_step[s] for s in sorted(by_step)]


CLASSES = ("cat", "dog", "owl")


def write_images(folder: Path, mode: str = "RGB", per_class: int = 4, classes=CLASSES, size=(20, 16), seed=0):
    """``per_class`` random images (width x height ``size``) in ``folder/<class>/`` for each class."""
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    for c in classes:
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / c / f"{i}.png")


def take(iterator, n):
    return [next(iterator) for _ in range(n)]

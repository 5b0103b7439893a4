"""Fixtures shared by every test folder; plain helpers are in :mod:`tests.support`.

The worked example space of docs/ joins the registered spaces, so the shared tests run it too, and
base-model hashes are cached per user, so the tests keep theirs apart. ``trained`` is one tiny run
trained once per session and shared by every module that reads a checkpoint without changing it. Under
pytest-xdist (``make test``: one worker per core) each worker runs torch on one thread.
"""
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

EXAMPLE_SPACE = Path(__file__).resolve().parents[1] / "docs" / "example_space.py"
os.environ.setdefault("SUPERNET_CACHE", tempfile.mkdtemp(prefix="supernet-test-cache-"))
os.environ["SUPERNET_SPACES"] = ",".join(filter(None, [os.environ.get("SUPERNET_SPACES"), str(EXAMPLE_SPACE)]))

from tests.support import tiny_cfg  # noqa: E402  (after the environment above)

if os.environ.get("PYTEST_XDIST_WORKER"):  # one pytest worker per core: torch's own threads would only contend
    torch.set_num_threads(1)


@pytest.fixture
def tiny1d():
    torch.manual_seed(0)
    from supernet.core.registry import build_supernet, space_config
    return build_supernet("mobilenet", space_config("mobilenet", "tiny"))


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A 6-step tiny run on 200 random 1-D examples of 4 classes (read-only for its users)."""
    from supernet.api import train
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "d.npz"
    np.savez(path, x=rng.standard_normal((200, 20)).astype(np.float32), y=rng.integers(0, 4, 200))
    return train(tiny_cfg(str(path), steps=6), tmp_path_factory.mktemp("runs") / "run")


@pytest.fixture
def npz_data(tmp_path):
    """A small learnable 1-D data set (length 20, 3 classes) in a user .npz file."""
    rng = np.random.default_rng(0)
    n, length = 240, 20
    y = rng.integers(0, 3, n)
    t = np.linspace(0, 1, length)
    x = np.sin(2 * np.pi * (y[:, None] + 1) * t[None]) + 0.3 * rng.standard_normal((n, length))
    path = tmp_path / "toy.npz"
    np.savez(path, x=x.astype(np.float32), y=y)
    return str(path)

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

EXAMPLE_SPACE = Path(__file__).resolve().parents[1] / "docs" / "example_space.py"
# the worked example space of docs/ joins the registered spaces, so the shared tests run it too
# base-model hashes are cached per user; the tests keep theirs apart
os.environ.setdefault("SUPERNET_CACHE", tempfile.mkdtemp(prefix="supernet-test-cache-"))
os.environ["SUPERNET_SPACES"] = ",".join(filter(None, [os.environ.get("SUPERNET_SPACES"), str(EXAMPLE_SPACE)]))

from supernet.core.registry import get_space, space_config, space_names  # noqa: E402


def tiny_variants():
    """Every registered space's test variants: ``tiny`` and any ``tiny*`` sibling."""
    return [(name, v) for name in space_names() for v in get_space(name).variants if v.startswith("tiny")]


@pytest.fixture
def tiny1d():
    torch.manual_seed(0)
    from supernet.core.registry import build_supernet
    return build_supernet("mobilenet", space_config("mobilenet", "tiny"))


def archs_of(space, n_random=2, seed=0):
    rng = np.random.default_rng(seed)
    return [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(n_random)]


def input_for(supernet, arch, batch=4, seed=0):
    """The space's example batch for ``arch`` (images or signals at its resolution, token ids...)."""
    return supernet.space.example_input(arch, batch, torch.Generator().manual_seed(seed))


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

"""worst-up's slots are a named type: a plain tuple in a step is refused, never read as candidates."""
import pytest
import torch
from tests.support import tiny_cfg

from supernet.core.placement import CPU
from supernet.core.registry import get_space
from supernet.core.task import make_task
from supernet.training.sampling import Candidates
from supernet.training.train_config import with_space_defaults
from supernet.training.trainer import Trainer


def test_worst_up_slots_are_candidates_and_a_plain_tuple_is_refused(tiny1d):
    cfg = with_space_defaults(tiny_cfg("unused", sampling="worst-up"), get_space("mobilenet").train_defaults)
    trainer = Trainer(tiny1d, make_task("classification"), cfg, CPU, 4)
    archs = trainer.archs(0)
    assert [type(a) for a in archs[2:]] == [Candidates] * (len(archs) - 2) and len(archs[2]) == 3
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 1, 20, generator=g), torch.randint(0, 10, (8,), generator=g)
    plain = archs[:2] + [tuple(archs[2])]  # a tuple that no sampling rule made: not worst-up's
    with pytest.raises(TypeError, match="a step member is an Arch, or Candidates for worst-up; got tuple"):
        trainer.backward(x, y, plain, 0)
    sandwich = Trainer(tiny1d, make_task("classification"), with_space_defaults(tiny_cfg("unused", sampling="sandwich")),
                       CPU, 4)
    assert not any(isinstance(a, Candidates) for a in sandwich.archs(0))

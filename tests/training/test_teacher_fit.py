"""A fixed teacher is checked against the labels before every subnet distils from it."""
import pytest
import torch

from supernet.data.base import Split, SplitBatches
from supernet.training.teacher import teacher_fit, unfit_teacher_warning


class Labelled(SplitBatches):
    """In-memory data: inputs are the labels themselves (one feature), so a teacher can read them."""

    def __init__(self, labels: list[int], val: bool = True):
        y = torch.tensor(labels)
        self.splits = {"train": Split(y[:, None].float(), y), "val": Split(y[:, None].float(), y) if val
                       else Split(torch.zeros(0, 1), torch.zeros(0, dtype=torch.long))}
        self.train = self.splits["train"]

    def split(self, name):
        return self.splits[name]

    def eval_batches(self, name, batch_size):
        s = self.splits[name]
        for i in range(0, len(s), batch_size):
            yield s.x[i:i + batch_size], s.y[i:i + batch_size]


def knows(x):  # logits that pick the label the input carries
    return torch.nn.functional.one_hot(x[:, 0].long(), 3).float()


def constant(x):  # an untrained head: one class for every input
    return torch.tensor([0.1, 0.9, 0.0]).expand(len(x), 3)


@pytest.mark.parametrize("val", [True, False])
def test_a_teacher_that_knows_the_labels_is_fit_and_one_that_does_not_is_warned(val):
    data = Labelled([0, 1, 2, 2, 1, 2] * 60, val=val)  # majority label 2: half the examples
    good, bad = teacher_fit(knows, data, torch.device("cpu")), teacher_fit(constant, data, torch.device("cpu"))
    assert good["split"] == ("val" if val else "train") and good["examples"] == 256
    assert good["fit"] and good["accuracy"] == 1.0 and good["majority"] == pytest.approx(0.5, abs=0.01)
    assert not bad["fit"] and bad["accuracy"] == pytest.approx(1 / 3, abs=0.01)
    line = unfit_teacher_warning(bad)
    assert "\n" not in line and "33.2 % of 256" in line and "--teacher inplace" in line

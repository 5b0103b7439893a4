"""hf_encoder's latency units: a table of base + one layer per (heads, width), for cpu and onnxruntime-cpu."""
import numpy as np
import pytest

from predictors.latency import TableLatencyPredictor
from supernet.core.registry import get_space, space_config
from supernet.hardware.rounds import MeasureConfig
from supernet.hardware.latency_table import LatencyTable, build_table

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["tiny", "tiny_vit"])
@pytest.mark.parametrize("target", ["cpu", "onnxruntime-cpu"])
def test_table_covers_every_arch(tmp_path, variant, target):
    space = get_space("hf_encoder").build_space(space_config("hf_encoder", variant))
    fast = MeasureConfig(target=target, threads=1, warmup=1, repeats=3, rounds=1, unit_rounds=1, min_seconds=0.0)
    table = build_table(LatencyTable("hf_encoder", space.config.to_dict(), fast), space, tmp_path / "t.json",
                        n_archs=2, progress=False)
    keys = {key for key, _, _ in space.all_latency_units()}
    assert set(table.units) == keys and len(keys) == 1 + len(space.config.heads) * len(space.config.widths)
    assert all(v > 0 for v in table.units.values()) and len(table.archs) == 2
    rng = np.random.default_rng(0)
    for arch in [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(5)]:
        units = [key for key, _, _ in space.latency_units(arch)]
        assert set(units) <= keys and len(units) == 1 + space.depth(arch)
        assert LatencyTable.load(tmp_path / "t.json").arch_sum(space, arch) == table.arch_sum(space, arch) > 0


def test_correction_fits_whole_subnets():
    """The table predictor's correction on (simulated) whole-subnet times: fused layers and a fixed overhead."""
    space = get_space("hf_encoder").build_space(space_config("hf_encoder", "default"))
    units = {key: 0.1 + 0.01 * i for i, (key, _, _) in enumerate(space.all_latency_units())}
    rng = np.random.default_rng(1)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(60)))
    predictor = TableLatencyPredictor(space, units=units)
    truth = 0.85 * predictor.table_only(archs) + 0.3
    half = len(archs) // 2
    predicted, _ = predictor.fit(archs[:half], truth[:half]).predict(archs[half:])
    mape = float(np.mean(np.abs(predicted - truth[half:]) / truth[half:]))
    assert mape < 0.01


def test_units_per_hidden_size():
    """An elastic hidden size: the base and every (heads, width) layer once per hidden size, each built at it; a
    fixed one keeps the keys of the tables built before hidden sizes were elastic."""
    import torch
    from dataclasses import replace
    fixed = get_space("hf_encoder").build_space(space_config("hf_encoder", "tiny"))
    assert {key for key, _, _ in fixed.all_latency_units()} == {"base@16"} | {
        f"layer:h{h}-w{w}@16" for h in (2, 4) for w in (32, 64)}
    space = get_space("hf_encoder").build_space(replace(space_config("hf_encoder", "tiny"), hidden_fractions=(0.5, 1.0)))
    units = list(space.all_latency_units())
    keys = {key for key, _, _ in units}
    assert len(keys) == len(units) == 2 * (1 + 2 * 2)
    arch = space.make({"depth": 2, "heads": [2, 4], "mlp_width": [32, 64], "hidden": 16})
    chosen = space.latency_units(arch)
    assert [key for key, _, _ in chosen] == ["base:d16@16", "layer:d16-h2-w32@16", "layer:d16-h4-w64@16"]
    key, build, shape = chosen[1]
    assert shape == (16, 16)
    with torch.no_grad():
        assert build()(torch.randn(1, *shape)).shape == (1, 16, 16)
        assert chosen[0][1]()(torch.rand(1, 16)).shape == (1, 3)

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

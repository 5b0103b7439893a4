"""Shared tests every registered space gets through its ``tiny`` variants (the checks: tests/support/space_checks.py)."""
import pytest
from tests.support import tiny_variants
from tests.support.space_checks import check_counts, check_extract_equals_forward, check_gradients, make


@pytest.mark.parametrize("name,variant", tiny_variants())
def test_every_active_parameter_gets_a_gradient(name, variant):
    check_gradients(make(name, variant))


@pytest.mark.parametrize("name,variant", tiny_variants())
def test_extract_equals_forward(name, variant):
    check_extract_equals_forward(make(name, variant))


@pytest.mark.parametrize("name,variant", tiny_variants() + [("mobilenet", "mnist1d"), ("mobilenet", "ofa")])
def test_flops_and_params_match_torch_counters(name, variant):
    check_counts(make(name, variant))


def test_default_2d_variant_matches_ofa_choices():
    space = make("mobilenet", "ofa").space
    dims = {d.name: d for d in space.dimensions}
    assert dims["ks"].choices == (3, 5, 7) and dims["e"].choices == (3, 4, 6) and dims["d"].choices == (2, 3, 4)
    assert dims["d"].length == 5 and dims["ks"].length == 20
    assert space.cardinality() == (9 ** 2 + 9 ** 3 + 9 ** 4) ** 5 * len(dims["r"].choices)


def test_ofa_variant_counts_match_dynast_measurements():
    """MACs and params of OFA MobileNetV3 subnets as logged by DyNAS-T (../shared/data)."""
    import ast
    import csv
    from pathlib import Path

    folder = Path(__file__).resolve().parents[3] / "shared" / "data" / "dynast_ofa_mbv3"
    if not folder.is_dir():
        pytest.skip(f"external data {folder} is not beside this checkout")
    model = make("mobilenet", "ofa")
    checked = 0
    for path in sorted(folder.glob("*.csv")):
        for row in list(csv.DictReader(open(path)))[:40]:
            a = ast.literal_eval(row["Sub-network"])
            arch = model.space.make({"ks": a["ks"], "e": a["e"], "d": a["d"], "r": a["r"][0]})
            assert model.flops(arch) == int(row["MACs"]) and model.params(arch) == int(row["Model Parameters"])
            checked += 1
    assert checked == 200

"""The mobilenet options OFA's nets need (fixed one-block stages, ReLU6, no feature mix, BN eps, kernel
transforms) in the space's counting, latency units and defaults."""
import itertools
from dataclasses import replace

import numpy as np

from search_spaces.mobilenet import VARIANTS
from search_spaces.mobilenet.latency import all_units, units
from search_spaces.mobilenet.ofa_nets import OFA_NETS
from search_spaces.mobilenet.space import MobileNetSpace


def test_cardinality_counts_distinct_archs_with_a_fixed_stage():
    config = replace(VARIANTS["tiny_proxyless"], kernels=(3, 5))
    space = MobileNetSpace(config)
    dims = {d.name: d for d in space.dimensions}
    assert dims["ks"].length == 2 * 2 + 1 and dims["d"].length == 2  # the fixed stage has one slot, no depth
    seen = set()
    for ks, e, d, r in itertools.product(itertools.product(config.kernels, repeat=5),
                                         itertools.product(config.expands, repeat=5),
                                         itertools.product(config.depths, repeat=2), config.resolutions):
        seen.add(space.make({"ks": ks, "e": e, "d": d, "r": r}))
    assert space.cardinality() == len(seen)


def test_latency_units_of_every_arch_are_in_the_table():
    rng = np.random.default_rng(0)
    for config in (VARIANTS["tiny_proxyless"], *OFA_NETS.values()):
        space = MobileNetSpace(config)
        table = {key for key, _, _ in all_units(config)}
        for arch in [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(5)]:
            assert {key for key, _, _ in units(config, arch)} <= table
    relu6 = {key for key, _, _ in all_units(OFA_NETS["ofa_proxyless_d234_e346_k357_w1.3"])}
    assert all("relu6" in key for key in relu6)  # never confused with a MobileNetV3 unit of the same shape


def test_existing_variants_keep_their_networks():
    """The new options default off: the variants trained before build the same tensors."""
    for name in ("ofa", "mnist1d", "mnist", "tiny", "tiny2d"):
        c = VARIANTS[name]
        assert not c.kernel_transform and not c.relu6 and c.bn_eps == 1e-5 and c.fixed_stages == 0
    assert OFA_NETS["ofa_mbv3_d234_e346_k357_w1.0"].widths == VARIANTS["ofa"].widths
    w12 = OFA_NETS["ofa_mbv3_d234_e346_k357_w1.2"]  # OFA's make_divisible(base * 1.2, 8)
    assert (w12.stem_channels, w12.widths, w12.head_expand, w12.head_features) == (24, (32, 48, 96, 136, 192), 1152, 1536)
    p13 = OFA_NETS["ofa_proxyless_d234_e346_k357_w1.3"]
    assert (p13.stem_channels, p13.first_channels, p13.widths, p13.head_expand) == (
        40, 24, (32, 56, 104, 128, 248, 416), 1664)


def test_ofa_flops_picks_have_the_flops_ofa_names():
    """OFA names its FLOPs-budget picks by their multiply-adds (``flops-389M``...): our exact count agrees."""
    from search_spaces.mobilenet.costs import count_macs
    config = OFA_NETS["ofa_mbv3_d234_e346_k357_w1.2"]
    space = MobileNetSpace(config)
    for pick, millions in (("flops-389M_top1-79.1_finetune-75", 389), ("flops-482M_top1-79.6_finetune-75", 482)):
        assert round(count_macs(config, space.load_arch(f"ofa:{pick}")) / 1e6) == millions

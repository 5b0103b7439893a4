"""OFA's published per-device subnets (``ofa.model_zoo.ofa_specialized``) named as archs: ``ofa:ID``.

OFA ships each pick as a static network config (``net.config``: first conv, blocks with kernel,
expand ratio, SE and activation, head) plus its input size (``run.config``). :func:`compact` keeps
what fixes the arch; the 50 picks are shipped with this package in ``data/ofa_specialized.json``
(built by ``python -m search_spaces.mobilenet.ofa_specialized SOURCE_FOLDER`` from the folder of
OFA's files, one sub-folder per pick). :func:`pick_arch` maps a pick onto a space: the stem, the
stage widths and strides, the head, the activation and every block must be those of the space's
network, each kernel, expand ratio, depth and the resolution one of its choices; else one line
naming the picks that do fit.
"""
from __future__ import annotations

import json
import sys
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from supernet.core.arch import Arch
from supernet.core.errors import SupernetError

from .blocks import make_divisible

PREFIX = "ofa:"
TABLE = Path(__file__).with_name("data") / "ofa_specialized.json"


def compact(net: dict, run: dict) -> dict:
    """The arch-defining part of one pick's ``net.config`` and ``run.config``."""
    def conv(block):
        return block.get("mobile_inverted_conv") or block["conv"]
    blocks = [[c["in_channels"], c["out_channels"], c["stride"], c["kernel_size"], c["expand_ratio"],
               c.get("mid_channels"), bool(c.get("use_se")), c["act_func"]] for c in map(conv, net["blocks"])]
    final = net.get("final_expand_layer")
    return {"net": net["name"], "r": run["image_size"], "stem": net["first_conv"]["out_channels"],
            "stem_act": net["first_conv"]["act_func"], "bn_eps": net["bn"]["eps"], "blocks": blocks,
            "head": [final["out_channels"] if final else None, net["feature_mix_layer"]["out_channels"]]}


def build_table(folder: str | Path) -> dict:
    """``{ID: compact pick}`` of every pick folder (``net.config`` + ``run.config``) in ``folder``."""
    picks = {}
    for sub in sorted(Path(folder).iterdir()):
        if (sub / "net.config").is_file():
            picks[sub.name] = compact(json.loads((sub / "net.config").read_text()),
                                      json.loads((sub / "run.config").read_text()))
    return picks


@lru_cache(maxsize=1)
def table() -> dict:
    return json.loads(TABLE.read_text())


def _misfit(config, pick: dict) -> str | None:
    """Why ``pick`` is not an arch of ``config``'s network (None when it is)."""
    c, blocks = config, pick["blocks"]
    act = "relu6" if c.relu6 else "h_swish"
    head = [None if not c.head_features else c.head_expand, c.head_features or c.head_expand]
    if (pick["stem"], pick["stem_act"], pick["bn_eps"], blocks[0][1], pick["head"]) != (
            c.stem_channels, act, c.bn_eps, c.first_channels, head):
        return "its stem, head or batch norm differ from this space's network"
    if pick["r"] not in c.resolutions:
        return f"its resolution {pick['r']} px is not one of the space's {list(c.resolutions)}"
    at = 1
    for s, width in enumerate(c.widths):
        stage = []
        while at < len(blocks) and blocks[at][1] == width:
            stage.append(blocks[at])
            at += 1
        allowed = c.depths if s < c.searched_stages else (1,)
        if len(stage) not in allowed or stage[0][2] != c.strides[s]:
            return f"its stage {s + 1} ({width} channels) has {len(stage)} blocks or another stride"
        for cin, cout, stride, k, e, mid, se, block_act in stage:
            want_act = "relu6" if c.relu6 else "h_swish" if c.hswish[s] else "relu"
            if (k not in c.kernels or e not in c.expands or se != c.use_se[s] or block_act != want_act
                    or (mid is not None and mid != make_divisible(cin * e))):
                return f"a block of its stage {s + 1} (kernel {k}, expand {e}) is not one of the space's"
    return None if at == len(blocks) else "it has blocks beyond the space's stages"


def _arch_values(config, pick: dict) -> dict:
    ks, e, d, at = [0] * config.slots, [0] * config.slots, [], 1
    for s in range(config.stages):
        slots = config.stage_slots(s)
        depth = 0
        while at < len(pick["blocks"]) and pick["blocks"][at][1] == config.widths[s]:
            ks[slots[depth]], e[slots[depth]] = pick["blocks"][at][3], pick["blocks"][at][4]
            depth, at = depth + 1, at + 1
        if s < config.searched_stages:
            d.append(depth)
    return {"ks": ks, "e": e, "d": d, "r": pick["r"]}


def fitting(config) -> list[str]:
    """The picks that are archs of ``config``'s network."""
    return [pid for pid, pick in table().items() if _misfit(config, pick) is None]


def pick_arch(space, pick_id: str) -> Arch:
    """The arch of OFA's pick ``pick_id`` in ``space`` (a mobilenet space); one clear error otherwise."""
    picks = table()
    if pick_id not in picks:
        fit = fitting(space.config)
        raise SupernetError(f"unknown OFA pick {pick_id!r}; the {len(fit)} of OFA's {len(picks)} picks that are archs "
                            f"of this space: {', '.join(PREFIX + p for p in fit) if fit else 'none'}")
    pick = picks[pick_id]
    why = _misfit(space.config, pick)
    if why is not None:
        from .ofa_nets import OFA_NETS
        fit = fitting(space.config)
        owner = next((n for n, c in OFA_NETS.items() if _misfit(replace(c, resolutions=(pick["r"],)), pick) is None),
                     pick["net"])
        raise SupernetError(f"OFA pick {pick_id!r} (a subnet of {owner}) is not an arch of this space: {why}; "
                            f"picks that are: {', '.join(PREFIX + p for p in fit) if fit else 'none'}")
    return space.make(_arch_values(space.config, picks[pick_id]))


if __name__ == "__main__":  # python -m search_spaces.mobilenet.ofa_specialized SOURCE_FOLDER
    TABLE.parent.mkdir(exist_ok=True)
    TABLE.write_text(json.dumps(build_table(sys.argv[1]), separators=(",", ":"), sort_keys=True) + "\n")
    print(f"wrote {TABLE}")

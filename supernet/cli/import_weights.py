"""``supernet import``: another project's published supernet weights as a run folder every command accepts."""
from __future__ import annotations

from ..core.errors import SupernetError

HELP = "turn another project's supernet file (OFA's) into a run folder"
EXAMPLES = """OFA's nets: ofa_mbv3_d234_e346_k357_w1.0, ofa_mbv3_d234_e346_k357_w1.2,
ofa_proxyless_d234_e346_k357_w1.3 (and those other spaces register; a wrong name lists them).
The file is the one ofa.model_zoo.ofa_net(NAME, pretrained=True) downloads (a dict with
'state_dict'); it is read with torch.load(weights_only=True), never executed.

examples:
  supernet import ofa --net ofa_mbv3_d234_e346_k357_w1.0 --weights ~/.torch/ofa_nets/ofa_mbv3_d234_e346_k357_w1.0 --out runs/ofa-w10
  supernet import ofa --net ofa_proxyless_d234_e346_k357_w1.3 --weights ofa_proxyless.pth --out runs/proxyless --resolutions 160,192,224
  supernet eval runs/ofa-w10 --arch largest --arch ofa:note10_lat-22ms_top1-76.6_finetune-25"""


def resolutions(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise SupernetError(f"--resolutions takes comma-separated pixels, e.g. 128,160,192,224; got {text!r}") from None
    if not values:
        raise SupernetError("--resolutions needs at least one resolution")
    return values


def add(p) -> None:
    p.add_argument("source", help="whose weights: ofa (OFA's once-for-all supernets)")
    p.add_argument("--net", required=True, help="the network the file holds, as its project names it")
    p.add_argument("--weights", required=True, help="the checkpoint file")
    p.add_argument("--out", required=True, help="run folder to create")
    p.add_argument("--resolutions", help="input sizes the run searches, comma-separated (default: all the net was "
                   "trained on; OFA: 128..224 in steps of 4)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")


def run(args) -> None:
    from ..api import import_weights
    sizes = resolutions(args.resolutions) if args.resolutions is not None else None
    out = import_weights(args.source, args.net, args.weights, args.out, resolutions=sizes, overwrite=args.overwrite)
    print(f"imported {args.source} {args.net}: {out}")

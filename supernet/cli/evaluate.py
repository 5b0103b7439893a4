"""``supernet eval``: archs of a trained supernet scored with BN recalibrated, with FLOPs and params."""
from __future__ import annotations

import json

from .common import CALIB_BATCHES, add_data, add_placement

HELP = "evaluate archs: BN recalibration, accuracy, FLOPs, params"
EXAMPLES = """examples:
  supernet eval runs/mnist1d --arch largest --arch smallest
  supernet eval runs/mnist1d --arch my_arch.json --split val
  supernet eval runs/img --arch largest --device cuda --precision bf16
  supernet eval runs/ofa-w10 --arch ofa:note10_lat-8ms_top1-71.4_finetune-25 --data imagefolder:~/imagenet
  supernet eval runs/ofa-w10 --arch largest --data packed:~/imagenet-packed --split val   # an imported run"""


def add(p) -> None:
    p.add_argument("checkpoint", help="run folder or checkpoint folder")
    p.add_argument("--arch", action="append", required=True,
                   help="largest | smallest | median | arch JSON file | inline JSON | a name the space defines (mobilenet: ofa:ID, an OFA pick) (repeatable)")
    p.add_argument("--split", choices=["val", "test"], action="append", help="splits to score (default: val and test)")
    p.add_argument("--calib-batches", type=CALIB_BATCHES, default=8,
                   help="batches of 256 training inputs for BN recalibration")
    add_data(p)
    add_placement(p)  # --device, --precision, --channels-last, --threads


def run(args) -> None:
    from ..api import evaluate
    for result in evaluate(args.checkpoint, args.arch, splits=args.split or ["val", "test"],
                           calib_batches=args.calib_batches, device=args.device, precision=args.precision,
                           channels_last=args.channels_last, threads=args.threads, data=args.data):
        print(json.dumps(result))

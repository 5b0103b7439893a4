"""``supernet export``: a static subnet (safetensors + JSON + ONNX), by arch or picked from a search."""
from __future__ import annotations

import json

from ..core.errors import SupernetError

HELP = "export a static subnet (safetensors + JSON + ONNX)"
EXAMPLES = """examples:
  supernet export runs/mnist1d --arch smallest --out exports/small
  supernet export runs/mnist1d --arch arch.json --out exports/mine --no-onnx
  supernet export --from-search runs/search-20M --pick knee --out exports/knee
  supernet export --from-search runs/search-20M --pick max-accuracy-under-budget --max-flops 1M --out exports/1m
  supernet export runs/mnist1d --arch smallest --out exports/ov --format openvino      (+ model.xml/.bin)
  supernet export runs/mnist1d --arch smallest --out exports/et --format executorch    (+ model.pte, XNNPACK)
  supernet export runs/ofa-w10 --arch ofa:note10_lat-8ms_top1-71.4_finetune-25 --data imagefolder:~/imagenet --out exports/n10
  supernet export --from-search runs/search-ofa --out exports/ofa-pick   # an imported run: the search's --data"""


def add(p) -> None:
    from ..nas.picks import PICKS
    p.add_argument("checkpoint", nargs="?", help="run folder or checkpoint folder (default with --from-search: "
                   "the checkpoint the search ran on)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--arch", help="largest | smallest | median | arch JSON file | inline JSON | a name the space defines (mobilenet: ofa:ID, an OFA pick)")
    which.add_argument("--from-search", metavar="RUN", help="pick the arch from a `supernet search` run folder")
    p.add_argument("--pick", default="max-accuracy-under-budget",
                   choices=PICKS,
                   help="with --from-search: the most accurate arch evaluated (budgets ignored), the knee of the "
                        "feasible front, or the most accurate arch within the budgets (default: %(default)s)")
    p.add_argument("--max-flops", help="with --pick max-accuracy-under-budget: FLOPs budget instead of the search's")
    p.add_argument("--max-params", help="with --pick max-accuracy-under-budget: params budget instead of the search's")
    from .common import add_data
    add_data(p, " (default with --from-search: the search's)")
    p.add_argument("--out", required=True, help="export folder to create")
    p.add_argument("--no-onnx", action="store_true", help="skip model.onnx")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.add_argument("--format", action="append", choices=["openvino", "executorch"], default=[],
                   help="also write the subnet in a runtime's own format beside model.onnx (repeatable): "
                        "openvino (model.xml + model.bin, needs supernet[openvino]), executorch (model.pte with "
                        "the XNNPACK delegate, needs supernet[executorch])")


def run(args) -> None:
    from ..hardware.runtimes.formats import FORMATS, write_format
    from ..hardware.timers import target_problem
    from ..nas.quantities import parse_quantity
    for fmt in args.format:  # refused before anything is written
        problem = target_problem(FORMATS[fmt][0])
        if problem:
            raise SupernetError(problem.replace(f"target {FORMATS[fmt][0]!r}", f"--format {fmt}"))
    budgets = {n: parse_quantity(getattr(args, f"max_{n}"), f"--max-{n}")
               for n in ("flops", "params") if getattr(args, f"max_{n}") is not None}
    if args.from_search:
        from ..api import export_from_search
        if budgets and args.pick != "max-accuracy-under-budget":
            raise SupernetError("--max-flops / --max-params apply only to --pick max-accuracy-under-budget")
        out, record = export_from_search(args.from_search, args.pick, args.out, budgets=budgets or None,
                                         checkpoint=args.checkpoint, onnx=not args.no_onnx, overwrite=args.overwrite,
                                         data=args.data)
        print(f"picked ({args.pick}): evaluation {record['index']} {json.dumps(record['arch'], separators=(',', ':'))}")
    else:
        from ..api import export
        if budgets:
            raise SupernetError("--max-flops / --max-params apply only with --from-search")
        if args.checkpoint is None:
            raise SupernetError("export needs CHECKPOINT (a run folder or checkpoint folder)")
        out = export(args.checkpoint, args.arch, args.out, onnx=not args.no_onnx, overwrite=args.overwrite,
                     data=args.data)
    for fmt in args.format:
        print(f"wrote {write_format(out, fmt)}")
    print(f"exported: {out}")

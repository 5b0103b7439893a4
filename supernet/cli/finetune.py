"""``supernet finetune``: an exported subnet (or a search pick) trained K more steps, distilled
from a frozen teacher (the supernet's largest subnet by default) or on the labels; the output
folder is a new export."""
from __future__ import annotations

from dataclasses import fields

from ..core.errors import SupernetError
from .common import add_field

HELP = "fine-tune an exported subnet (KL or alpha-divergence from a frozen teacher, or labels only)"
EXAMPLES = """examples:
  supernet finetune exports/knee --out exports/knee-ft                 # 200 steps, KL from the largest subnet
  supernet finetune exports/knee --kd alpha --out exports/knee-fta     # AlphaNet's alpha-divergence instead
  supernet finetune exports/knee --kd none --out exports/knee-ce       # the labels alone, no teacher
  supernet finetune exports/knee --teacher runs/mnist1d-long --out exports/knee-ft2   # another run's largest
  supernet finetune exports/knee --teacher exports/big-ft --out exports/knee-ft3      # or an export as teacher
  supernet finetune exports/knee --steps 400 --lr 0.01 --out exports/knee-ft400
  supernet finetune --from-search runs/search-2m --pick knee --out exports/knee-ft
  supernet finetune exports/mine --checkpoint runs/mnist1d --out exports/mine-ft   # export made elsewhere
  supernet finetune --resume --out exports/knee-ft                     # continue an interrupted run
  supernet finetune exports/n10 --data imagefolder:~/mydata --out exports/n10-ft   # a subnet of an imported run
the --out folder is the new export (load_exported / model.onnx) and holds the run's log and checkpoints."""


def add(p) -> None:
    from ..nas.picks import PICKS
    from ..training.train_config import FinetuneConfig
    p.add_argument("export", nargs="?", help="export folder (written by `supernet export`) to fine-tune")
    p.add_argument("--from-search", metavar="RUN", help="fine-tune the arch a `supernet search` run picks instead")
    p.add_argument("--pick", default="max-accuracy-under-budget",
                   choices=PICKS, help="with --from-search (default: %(default)s)")
    p.add_argument("--checkpoint", help="supernet run or checkpoint folder (default: the one the export names)")
    for f in fields(FinetuneConfig):  # help, type and default from each field
        add_field(p, f, default=f.default, shown=f.default if f.default is not None else None)
    p.add_argument("--out", required=True, help="new export folder (also the run folder)")
    p.add_argument("--no-onnx", action="store_true", help="skip model.onnx")
    p.add_argument("--resume", action="store_true", help="continue the run in --out with its saved options")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")


def run(args) -> None:
    from ..api import finetune
    from ..training.train_config import FinetuneConfig
    if args.export and args.from_search:
        raise SupernetError("give EXPORT or --from-search, not both")
    config = FinetuneConfig(**{f.name: getattr(args, f.name) for f in fields(FinetuneConfig)})
    out = finetune(args.export, args.out, checkpoint=args.checkpoint, config=config, resume=args.resume,
                   overwrite=args.overwrite, onnx=not args.no_onnx, from_search=args.from_search, pick=args.pick)
    print(f"fine-tuned: {out}")

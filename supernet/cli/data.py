"""``supernet data pack``: an image folder decoded once into shards that ``--data packed:DIR`` reads."""
from __future__ import annotations

import argparse

HELP = "prepare data: pack an image folder into shards (no decoding while training)"
EXAMPLES = """examples:
  supernet data pack imagefolder:data/imagenet --size 256 --out data/imagenet-256
  supernet data pack data/digits --size 64 --out data/digits-64 --workers 4 --overwrite
  supernet train --data packed:data/imagenet-256 --device cuda --precision bf16 --channels-last
images whose shorter side exceeds --size are shrunk to it (aspect kept); smaller ones are stored as they are.
Crops, flips and normalisation then run in batch on the training device; the folder's train/ val/ test/
layout is kept (no val/: held out of train/ by --seed when read, as imagefolder: does)."""


def add(p) -> None:
    from .common import whole
    actions = p.add_subparsers(dest="data_command", required=True)
    pack = actions.add_parser("pack", help="decode an image folder once into memory-mappable shards",
                              epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    pack.add_argument("source", help="imagefolder:PATH or PATH (train/<class>/..., optional val/ and test/)")
    pack.add_argument("--size", type=whole(1, 1 << 16), required=True,
                      help="shorter side images are shrunk to when larger (e.g. 256 for 224 px training)")
    pack.add_argument("--out", required=True, help="folder to write (meta.json, shards, index)")
    pack.add_argument("--workers", type=whole(0, 256), default=2, help="decoding processes (default: %(default)s)")
    pack.add_argument("--shard-mb", type=whole(1, 1 << 20), default=1024, help="MiB per shard (default: %(default)s)")
    pack.add_argument("--overwrite", action="store_true", help="replace --out when it exists and is not empty")
    pack.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")


def run(args) -> None:
    from ..api import pack_data
    meta = pack_data(args.source, args.out, args.size, workers=args.workers, shard_mb=args.shard_mb,
                     overwrite=args.overwrite, progress=args.progress)
    counts = " / ".join(f"{n} {split}" for split, n in meta["splits"].items())
    skipped = f", {len(meta['skipped'])} unreadable files skipped" if meta["skipped"] else ""
    print(f"packed {counts} images ({len(meta['classes'])} classes, {meta['channels']} channel(s), shorter side "
          f"<= {meta['size']} px{skipped}) into {args.out}; train with --data packed:{args.out}")

"""The ``supernet`` command: a thin shell over the Python API.

Each subcommand is one module of this package with ``HELP``, ``EXAMPLES``, ``add(parser)`` and
``run(args)``: it parses into a config and calls one public function. Errors a user can cause
print one line (``error: ...``) and exit with status 2. Building the parser imports neither
torch nor the search (``supernet --help`` is fast).
"""
from __future__ import annotations

import argparse
import logging
import sys
from importlib import import_module

from ..core.errors import SupernetError
from .common import Parser

# command -> module of this package
COMMANDS = {"train": "train", "eval": "evaluate", "export": "export", "search": "search", "finetune": "finetune",
            "latency": "latency", "data": "data", "spaces": "spaces", "import": "import_weights"}


def command(name: str):
    return import_module(f".{COMMANDS[name]}", __package__)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only``, the arguments of that command alone (the others are
    listed with their help line)."""
    parser = Parser(prog="supernet", description="Train a weight-entangled supernet once, "
                    "then evaluate and export subnets without retraining.",
                    epilog="run `supernet COMMAND --help` for examples")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        module = command(name)
        p = sub.add_parser(name, help=module.HELP, epilog=module.EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if only is None or only == name:
            module.add(p)
    return parser


# optional packages that log at import time (torchao, which executorch brings, and torch's pytree warning
# about it): the CLI's stderr is its one-line errors, so these loggers keep to errors
QUIET_LOGGERS = ("torchao", "torch.utils._pytree")


def main(argv: list[str] | None = None) -> int:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv[0] if argv and argv[0] in COMMANDS else "").parse_args(argv)
    try:
        command(args.command).run(args)
    except SupernetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    for problem in _space_problems():
        print(f"warning: {problem}", file=sys.stderr)
    return 0


def _space_problems() -> list[str]:
    """Space modules that failed to import, when this command used the registry (else nothing)."""
    registry = sys.modules.get("supernet.core.registry")
    return registry.space_problems() if registry is not None else []


if __name__ == "__main__":
    sys.exit(main())

"""``supernet spaces``: the registered search spaces, their variants and sizes."""
from __future__ import annotations

HELP = "list registered search spaces and variants"
EXAMPLES = """examples:
  supernet spaces
  SUPERNET_SPACES=docs/example_space.py supernet spaces      # with a space of your own"""


def add(p) -> None:
    pass


def run(args) -> None:
    """Print every registered space's variants; a space module that failed to import is then the error."""
    from ..core.errors import SupernetError
    from ..core.registry import get_space, space_names, space_problems
    for name in space_names():
        entry = get_space(name)
        for variant, cfg in entry.variants.items():
            default = "  (default)" if variant == entry.default_variant else ""
            print(f"{name}  {variant:<8} {entry.build_space(cfg).cardinality():.3e} archs{default}")
    if space_problems():
        raise SupernetError("; ".join(space_problems()))

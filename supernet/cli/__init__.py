"""The ``supernet`` command: one module per subcommand, each a thin shell over the Python API."""
from .main import main

__all__ = ["main"]

"""Concrete search spaces. Importing this package registers every space."""
from . import mobilenet  # noqa: F401

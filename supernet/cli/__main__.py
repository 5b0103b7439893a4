"""``python -m supernet.cli``: the ``supernet`` command."""
import sys

from .main import main

sys.exit(main())

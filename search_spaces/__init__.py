"""Concrete search spaces, one package each (``mobilenet``, ``llm_lora``), found by the engine through
the ``supernet.spaces`` entry-point group. Importing this package imports none of them."""

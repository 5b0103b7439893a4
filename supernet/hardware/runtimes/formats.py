"""An export folder in a deployment runtime's own format, beside ``model.onnx``:

- ``openvino``: ``model.xml`` + ``model.bin``, the OpenVINO IR (fp32 weights) of the ONNX export;
- ``executorch``: ``model.pte``, the ExecuTorch program lowered with the XNNPACK delegate.

Each file is written through a temp file and replaced whole; a runtime that is not installed is refused
in one line naming its extra before anything is written.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from ...core.errors import SupernetError

FORMATS = {"openvino": ("openvino-cpu", "model.xml"), "executorch": ("executorch-xnnpack", "model.pte")}


def write_format(folder: str | Path, fmt: str) -> Path:
    """Write ``fmt``'s file(s) into the export ``folder`` (made by ``supernet export``); returns the main file."""
    import torch

    from ...io.export import export_onnx, load_exported
    from ...io.files import read_json
    from ..timers import target_problem
    if fmt not in FORMATS:
        raise SupernetError(f"unknown export format {fmt!r}; formats are {['onnx', *FORMATS]}")
    target, name = FORMATS[fmt]
    problem = target_problem(target)
    if problem:
        raise SupernetError(problem.replace(f"target {target!r}", f"--format {fmt}"))
    folder = Path(folder)
    net = load_exported(folder)
    x = torch.zeros(read_json(folder / "arch.json", "export arch")["input_shape"])
    if fmt == "executorch":
        from .executorch import write_pte
        write_pte(net, x, folder / name)
        return folder / name
    from .openvino import save_ir
    onnx = folder / "model.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        if not onnx.exists():  # exported with --no-onnx: a temporary one
            onnx = Path(tmp) / "model.onnx"
            export_onnx(net, tuple(x.shape), onnx)
        with tempfile.TemporaryDirectory(dir=folder) as stage:  # .xml and .bin appear together
            save_ir(onnx, Path(stage) / name)
            for part in (name, Path(name).with_suffix(".bin").name):
                (Path(stage) / part).replace(folder / part)
    return folder / name

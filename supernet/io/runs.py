"""Run folders: created (never overwritten unless asked), kept apart from their inputs; the JSON-lines log and TensorBoard."""
from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import SupernetError
from .claim import CLAIM, claim, release
from .files import atomic_write_text


def check_apart(out: str | os.PathLike, inputs, what: str = "--out") -> None:
    """Refuse an output folder that is, contains, or sits inside any of ``inputs`` (paths it reads)."""
    target = Path(out).expanduser().resolve()
    for source in inputs:
        if source is None:
            continue
        source = Path(source).expanduser().resolve()
        if target == source or source in target.parents or target in source.parents:
            raise SupernetError(f"{what} {str(out)!r} overlaps the input {str(source)!r} it reads; "
                                "choose an output folder outside it")


def prepare_run_dir(path: str | os.PathLike | None, kind: str, *, resume: bool = False,
                    overwrite: bool = False, protect=()) -> Path:
    """Create and claim the run folder (:mod:`.claim`: a second writer is refused while this process
    lives; :func:`release_run_dir` gives it up). An existing non-empty folder is an error unless
    resuming or overwriting.

    ``protect`` lists input paths the folder must not be, contain or sit inside.
    """
    path = Path(path) if path else Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    check_apart(path, protect)
    check_writable(path)
    if resume and not path.exists():
        raise SupernetError(f"cannot resume: run folder {str(path)!r} does not exist")
    make_dir(path)
    claim(path)
    try:
        if contents(path) and not resume:
            if not overwrite:
                saved = "" if any((path / "checkpoints").glob("step-*")) or not (path / "config.json").exists() \
                    else " (a run that stopped before its first checkpoint: --overwrite starts it again)"
                raise SupernetError(f"run folder {str(path)!r} already exists and is not empty{saved}; "
                                    "pass --resume to continue it, --overwrite to replace it, or choose another --out")
            for entry in contents(path):
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    except BaseException:
        release(path)
        raise
    return path


def contents(path: Path) -> list[Path]:
    """What a run folder holds, its claim file aside."""
    return [p for p in Path(path).iterdir() if p.name != CLAIM]


@contextmanager
def claimed_folder(out: Path, what: str):
    """Claim ``out`` (created when missing) for the block, for writers that replace it whole at the end
    (:func:`supernet.io.files.atomic_dir` with ``keep=CLAIM``); a folder the block created and left empty goes."""
    out = Path(out)
    existed = out.exists()
    make_dir(out)
    claim(out, what)
    try:
        yield out
    except BaseException:
        release(out)
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    release(out)


def release_run_dir(path: str | os.PathLike | None) -> None:
    """Give up this process's claim on a run folder (nothing when it holds none)."""
    if path is not None:
        release(path)


def check_writable(path: str | os.PathLike, what: str = "--out") -> None:
    """Refuse, before any work, an output path that cannot be created: its nearest existing ancestor must be
    a writable folder."""
    path = Path(path).expanduser().absolute()
    ancestor = next((p for p in (path, *path.parents) if p.exists()), None)
    if ancestor is None or not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        why = "it is not a folder" if ancestor is not None and not ancestor.is_dir() else "it is not writable"
        raise SupernetError(f"{what} {str(path)!r} cannot be created: {why} ({ancestor}); choose a folder you can "
                            "write to")


def make_dir(path: Path, what: str = "--out") -> None:
    """``mkdir -p`` with one clear error instead of an OSError traceback."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SupernetError(f"{what} {str(path)!r} cannot be created ({exc.strerror or type(exc).__name__}); "
                            "choose a folder you can write to") from None


def truncate_log(path: Path, step: int) -> None:
    """Keep only the JSON lines of ``path`` logged before ``step`` (step-less lines stay), so a
    resumed run from the checkpoint at ``step`` logs no step twice. Atomic."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines(keepends=True):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        logged = record.get("step")
        epoch_row = "epoch" in record
        if logged is None or logged < step or (epoch_row and logged <= step):
            kept.append(line if line.endswith("\n") else line + "\n")
    atomic_write_text(path, "".join(kept))


class RunLog:
    """Appends one JSON object per line to ``log.jsonl`` and mirrors scalars to TensorBoard.

    ``purge_step``: TensorBoard events at or after this step from an earlier, interrupted
    session are dropped (a resumed run rewrites them).
    """

    def __init__(self, run_dir: Path, tensorboard: bool = True, purge_step: int | None = None):
        self.file = open(Path(run_dir) / "log.jsonl", "a")
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"), purge_step=purge_step)

    def log(self, record: dict, step: int | None = None, scalars: dict | None = None) -> None:
        self.file.write(json.dumps(record, sort_keys=True) + "\n")
        self.file.flush()
        if self.writer is not None and scalars and step is not None:
            for tag, value in scalars.items():
                self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()

"""Atomic writes (temp file or folder, then ``os.replace``) and reading JSON with one clear error."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import SupernetError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_temp_dir(parent: Path, prefix: str) -> Path:
    """A temp folder in ``parent`` (for write-then-rename) with normal, umask-based permissions."""
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


@contextmanager
def atomic_dir(final: Path, keep: str | None = None):
    """Yield a temp folder beside ``final``; when the block succeeds it is renamed to ``final``
    (replacing it), when it fails it is removed, so ``final`` is never half-written. ``keep``: a file
    of the old ``final`` moved (renamed, so the same file) into the new one, e.g. its claim."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(final.parent, f".{final.name}.tmp-")
    try:
        yield tmp
        normal_modes(tmp)
        if keep is not None and (final / keep).exists():
            os.replace(final / keep, tmp / keep)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def normal_modes(folder: Path) -> None:
    """Give every file under ``folder`` the mode a plain ``open()`` would (0666 less the umask):
    writers such as safetensors' ``save_file`` and ``tempfile`` create files 0600."""
    mode = 0o666 & ~_umask()
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.chmod(path, mode)


@contextmanager
def atomic_file(path: str | os.PathLike):
    """Yield a temp file path beside ``path`` for any writer (e.g. ``savefig``); on success it gets
    the umask-based mode and replaces ``path``, on failure it is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str, sync: bool = True) -> None:
    """Write ``text`` to a temp file beside ``path``, fsync (unless ``sync`` is False: still atomic for the
    processes reading it, only not forced to disk yet), then ``os.replace``."""
    with atomic_file(path) as tmp, open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        if sync:
            os.fsync(fh.fileno())


def sync_file(path: str | os.PathLike) -> None:
    """fsync ``path`` (a file written with ``sync=False``), if it exists."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_json(path: str | os.PathLike, data, sync: bool = True) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n", sync)


def read_json(path: str | os.PathLike, what: str = "file") -> dict:
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise SupernetError(f"{what} {str(path)!r} does not exist") from None
    except json.JSONDecodeError as exc:
        raise SupernetError(f"{what} {str(path)!r} is not valid JSON ({exc.msg}, line {exc.lineno})") from None

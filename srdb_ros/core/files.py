"""Writing files so that a partial one never looks complete and a planted name is never followed."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_output(path: str | Path, mode: int = 0o644) -> Iterator[Path]:
    """A fresh temporary file beside ``path`` (``mkstemp``: unique, created exclusively, so an existing file or
    symlink of any name is never written through) for the block to write; fsynced and renamed over ``path``
    when the block succeeds, removed when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, f".{path.name}.")
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def staging_dir(output: Path) -> Path:
    """A fresh hidden folder beside ``output`` to build it in (renamed over it when complete); leftovers of
    earlier runs that were killed are removed first."""
    remove_stale(output.parent, f".{output.name}.")
    return Path(tempfile.mkdtemp(prefix=f".{output.name}.{os.getpid()}.", dir=output.parent))


def remove_stale(directory: Path, prefix: str) -> list[Path]:
    """Remove ``{prefix}{pid}.*`` temporary files and folders whose process no longer runs (it was killed
    before it could clean up); those of running processes are left alone."""
    removed = []
    for leftover in map(Path, glob.glob(os.path.join(glob.escape(str(directory)), glob.escape(prefix) + "*"))):
        pid = leftover.name[len(prefix) :].split(".", 1)[0]
        if not pid.isdigit() or _running(int(pid)):
            continue
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed.append(leftover)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

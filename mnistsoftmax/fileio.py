"""Writing files so that a crash never leaves half of one that is later read as whole, and
opening files that others may have put there without waiting on one that is not a file."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path


def open_regular(path: Path, mode: str = "rb"):
    """open(path, mode) for reading, refused with an OSError unless it is a regular file: opened
    without blocking, so that a FIFO (whose open waits for a writer) or a device put in a watched
    folder is refused at once instead of hanging its reader."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, mode, encoding="utf-8" if "b" not in mode else None)
    except BaseException:
        os.close(fd)
        raise


def default_file_mode() -> int:
    """The mode open() would give a new file under the current umask (mkstemp gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def temporary_beside(path: Path, suffix: str) -> tuple[int, Path]:
    """A new hidden temporary file in path's folder (same file system, so a rename is atomic),
    with the usual permissions: (file descriptor, its path)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.fchmod(fd, default_file_mode())
    return fd, Path(tmp)


def atomic_write(path: Path, write) -> None:
    """Call write(file) on a temporary file in path's folder, fsync it, then rename it over path.

    A crash at any moment leaves either the old file or the new one, never half of one.
    """
    fd, tmp = temporary_beside(path, ".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

"""Writing state files so that a crash never leaves one half-written."""

from __future__ import annotations

import os
import tempfile


def atomic_write(path: str, data: bytes, *, mode: int = 0o644, dir_mode: int = 0o755) -> None:
    """Write `data` to `path` through a temp file in the same directory, fsync, rename."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=dir_mode, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise

"""Writing state files so that a crash never leaves one half-written, and making their
appearance or removal durable: a rename, link or unlink is only on disk once the
directory holding the name is fsync'd. Reading one back whole (`read_file`).

Threads of one process (the agent's workers) that need the same directory fsync'd share
the fsyncs (group commit): one fsync makes durable every change made in the directory
before it started, so a thread waits for the fsync in flight and then, unless a later one
already covered it, runs the next one for everybody waiting. Four ADDs in flight on a node
then cost about two directory fsyncs instead of four, each answered no earlier than before.
"""

from __future__ import annotations

import os
from _thread import allocate_lock  # threading itself costs a plugin run in-process ~1 ms

TEMP_PREFIX = ".tmp-"
_TEMP_ATTEMPTS = 100


def _create_temp(
    directory: str, *, prefix: str = TEMP_PREFIX, mode: int = 0o600
) -> tuple[int, str]:
    """A new file with a random name in `directory`, opened for writing: (fd, path).
    tempfile.mkstemp does the same, but importing tempfile (random, hashlib, OpenSSL)
    costs a plugin that runs in-process ~7 ms."""
    for _ in range(_TEMP_ATTEMPTS):
        path = os.path.join(directory, prefix + os.urandom(6).hex())
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no unused temporary name in {directory}")


def write_temp(
    directory: str,
    data: bytes,
    *,
    prefix: str = TEMP_PREFIX,
    mode: int = 0o600,
    durable: bool = True,
) -> str:
    """A new file with a random name in `directory` holding `data`, with exactly `mode`
    and fsync'd unless not `durable`; returns its path. Nothing is left if writing fails."""
    fd, tmp = _create_temp(directory, prefix=prefix, mode=mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, mode)  # whatever the umask
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        _remove_quietly(tmp)
        raise
    return tmp


def read_file(path: str) -> bytes:
    """The whole file at `path`, through the descriptor alone: open(path, "rb") adds an
    fstat, an isatty ioctl, a seek and a second fstat, system calls a warm agent makes
    for every pod (subnet.env on ADD, the saved delegate config on DEL)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def atomic_write(
    path: str,
    data: bytes,
    *,
    mode: int = 0o644,
    dir_mode: int = 0o755,
    temp_prefix: str = TEMP_PREFIX,
    durable: bool = True,
) -> None:
    """Write `data` to `path` through a temp file in the same directory, fsync, rename.

    A process killed in between leaves the temp file (`temp_prefix` + random) behind;
    callers that must find it again later name it with a prefix of their own.
    Without `durable`, no fsync: readers still see the old file or the new one, never a
    part, but after a power loss the file may be empty. Only for files whose readers
    cope with that, where the fsync would cost every pod a disk flush."""
    directory = os.path.dirname(path) or "."
    try:
        tmp = write_temp(directory, data, prefix=temp_prefix, mode=mode, durable=durable)
    except FileNotFoundError:  # the directory's first file (made here, not checked each time)
        os.makedirs(directory, mode=dir_mode, exist_ok=True)
        tmp = write_temp(directory, data, prefix=temp_prefix, mode=mode, durable=durable)
    try:
        os.rename(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise
    if durable:
        fsync_dir(directory)


class _DirectorySync:
    """The fsyncs of one directory, numbered in the order they start; one at a time."""

    def __init__(self) -> None:
        self._turn = allocate_lock()  # held by the fsync in flight
        self.started = 0  # changed only under _turn
        self.finished = 0  # the last fsync that returned without error

    def sync(self, directory: str) -> None:
        # Every change the caller made is in the directory by now, so any fsync that
        # starts from here on covers it: the next number is the first one that does.
        # (Reading an int attribute is atomic; it is only written under _turn.)
        covering = self.started + 1
        with self._turn:
            if self.finished >= covering:
                return  # an fsync that started after the caller's changes has finished
            self.started += 1
            number = self.started
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self.finished = number


_SYNCS: dict[str, _DirectorySync] = {}


def fsync_dir(directory: str) -> None:
    """Make the names created, renamed or removed in `directory` durable (sharing the
    fsync with other threads of this process that wait for the same directory)."""
    sync = _SYNCS.get(directory)
    if sync is None:
        sync = _SYNCS.setdefault(directory, _DirectorySync())
    sync.sync(directory)


def remove_durably(path: str) -> bool:
    """Remove `path` and fsync its directory; False when there was nothing to remove."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    fsync_dir(os.path.dirname(path) or ".")
    return True


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

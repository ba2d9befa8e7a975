"""Lock files taken with a deadline: host-local's network lock and the attachment locks.

flock(LOCK_EX) waits forever, and a hung process holding a lock (a reference host-local
stuck on a dead disk, say) would hold every pod of the node with it. So:
- threads of this process (the agent serves many pods at once) queue on a
  threading.Lock per lock file first, which waits with a timeout and in order;
- the one at the front then asks flock without blocking, and retries with a short,
  growing pause until the deadline: only other processes can hold it then, and they
  hold it for milliseconds.
At the deadline the caller gets LockTimeout naming the holder, from /proc/locks, when
the kernel tells (its pid and command).
"""

from __future__ import annotations

import fcntl
import os
import time
from _thread import LockType, allocate_lock
from collections.abc import Iterator
from contextlib import contextmanager

_PAUSES = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02)
# threading.Lock is _thread.allocate_lock; importing threading costs a plugin run in-process ~1 ms
_local_locks: dict[str, LockType] = {}
_local_locks_guard = allocate_lock()


class LockTimeout(Exception):
    """The lock was not free within the deadline; the message names the holder."""


@contextmanager
def flock_within(fd: int, path: str, timeout: float) -> Iterator[None]:
    """Hold flock(LOCK_EX) on `fd` (the open lock file at `path`) for the block; the
    lock goes with the descriptor (the caller closes it)."""
    deadline = time.monotonic() + timeout
    local = _local_lock(path)
    if not local.acquire(timeout=max(timeout, 0)):
        raise LockTimeout(f"{path} is held by another request of this process for {timeout:g}s")
    try:
        _flock(fd, path, deadline, timeout)
        yield
    finally:
        local.release()


def _local_lock(path: str) -> LockType:
    key = os.path.abspath(path)
    with _local_locks_guard:
        return _local_locks.setdefault(key, allocate_lock())


def _flock(fd: int, path: str, deadline: float, timeout: float) -> None:
    attempt = 0
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LockTimeout(f"{path} is held {holder(fd)} for more than {timeout:g}s")
        time.sleep(min(_PAUSES[min(attempt, len(_PAUSES) - 1)], remaining))
        attempt += 1


def holder(fd: int) -> str:
    """'by pid N (command)' for the process holding a flock on `fd`'s file, as far as
    /proc/locks tells; 'by another process' when it does not."""
    info = os.fstat(fd)
    inode = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return "by another process"
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; waiters are marked "->"
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == inode:
            pid = fields[4]
            return f"by pid {pid} ({_command(pid)})"
    return "by another process"


def _command(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
    except OSError:
        return "gone"
    return os.path.basename(argv[0].decode(errors="replace")) or "?"

"""One lock per attachment (container ID, interface), so that an ADD, CHECK or DEL of
one attachment never runs alongside another verb of the same attachment.

The runtime may give up on an ADD (the agent's watchdog answered it "try again") and
send the DEL while the ADD still runs; without this lock the DEL could release what the
ADD had not created yet, and the ADD then leave an address and a veth no one owns. With
it the DEL waits for the ADD and undoes it whole. The lock is a file, flock()ed, so the
agent and a plugin running in an executable's own process (no agent) exclude each other.

Files live in PODNET_LOCK_DIR (default /run/podnet/attachments: a tmpfs, empty after a
reboot as the attachments are) and are named "<container ID>:<ifname>" (':' is in
neither). A DEL removes its file before it lets go; whoever then holds a descriptor of
the removed file sees that after taking the lock and opens the path again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from podnet.cni._flock import flock_within

LOCK_DIR_ENV = "PODNET_LOCK_DIR"
# Set for a delegate executable run while its caller holds the attachment's lock (ours
# -> reference bridge -> our host-local): podnet plugins it reaches do not take it again.
LOCKED_ENV = "PODNET_ATTACHMENT_LOCKED"
ATTACHMENT_VERBS = ("ADD", "CHECK", "DEL")
DEFAULT_LOCK_DIR = "/run/podnet/attachments"
# Below the agent's request timeout: a DEL waiting for a stuck ADD answers "try again".
ATTACHMENT_LOCK_TIMEOUT = 30.0
_MAX_NAME = 200


class HeldAttachment:
    """The lock of one attachment, held; `remove` (set by a successful DEL) removes the
    file on release."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.remove = False


def lock_dir() -> str:
    return os.environ.get(LOCK_DIR_ENV) or DEFAULT_LOCK_DIR


def lock_path(container_id: str, ifname: str, directory: str | None = None) -> str:
    name = f"{container_id}:{ifname}"
    if len(name.encode(errors="surrogateescape")) > _MAX_NAME:
        import hashlib  # only here: importing it costs every plugin process milliseconds

        name = hashlib.sha256(name.encode(errors="surrogateescape")).hexdigest()
    return os.path.join(directory or lock_dir(), name)


@contextmanager
def attachment_locked(
    container_id: str, ifname: str, *, timeout: float | None = None
) -> Iterator[HeldAttachment]:
    """Hold the attachment's lock for the block; LockTimeout after `timeout` seconds
    (default ATTACHMENT_LOCK_TIMEOUT), OSError when the lock file cannot be made."""
    path = lock_path(container_id, ifname)
    wait = ATTACHMENT_LOCK_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + wait
    while True:
        fd = _open(path)
        try:
            with flock_within(fd, path, max(deadline - time.monotonic(), 0)):
                if not _still_at(fd, path):
                    continue  # removed by the DEL that held it: take the new file
                held = HeldAttachment(path)
                yield held
                if held.remove:
                    os.unlink(path)
                return
        finally:
            os.close(fd)


def _open(path: str) -> int:
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        return os.open(path, flags, 0o600)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        return os.open(path, flags, 0o600)


def _still_at(fd: int, path: str) -> bool:
    try:
        here = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)

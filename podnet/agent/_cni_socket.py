"""Who may use the agent's CNI socket: the socket's directory is checked before the agent
listens there, and every connection's peer credentials before its request is read.

Whoever can hand the agent a CNI request can make it create and delete interfaces and
addresses as root, so only root and the agent's own user may (as kubelet/containerd run
plugins as root). The socket file is 0600, and its directory must belong to root or the
agent's user and be writable by no one else: a directory others can write to would let
them swap the socket for their own and receive the runtime's requests.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import struct

_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class UnsafeSocketDir(OSError):
    """The socket's directory (or a file at the socket's path) is not safe to serve in."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(errno.EPERM, f"{path}: {why}; refusing to serve the CNI socket there")

    def __str__(self) -> str:
        return str(self.strerror)


def trusted_uids() -> frozenset[int]:
    return frozenset((0, os.geteuid()))


def check_socket_dir(directory: str) -> None:
    """Create `directory` (0755) if missing, then insist it is a real directory owned by
    root or this process's user, and not writable by group or others."""
    os.makedirs(directory, mode=0o755, exist_ok=True)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeSocketDir(directory, "not a directory (a symlink?)")
    if info.st_uid not in trusted_uids():
        raise UnsafeSocketDir(directory, f"owned by uid {info.st_uid}, not root or the agent's")
    if info.st_mode & 0o022:
        mode = stat.S_IMODE(info.st_mode)
        raise UnsafeSocketDir(directory, f"writable by group or others (mode {mode:04o})")


def remove_stale_socket(path: str) -> None:
    """Remove the socket a previous agent left at `path`; anything else there is refused."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise UnsafeSocketDir(path, "exists and is not a socket")
    os.unlink(path)


def listen(path: str, backlog: int) -> socket.socket:
    """A listening unix socket at `path`, mode 0600, after the checks above."""
    check_socket_dir(os.path.dirname(os.path.abspath(path)))
    remove_stale_socket(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
        os.chmod(path, 0o600)
        listener.listen(backlog)
    except BaseException:
        listener.close()
        raise
    return listener


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end, as the kernel recorded it at connect()."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    _, uid, _ = _PEERCRED.unpack(raw)
    return int(uid)

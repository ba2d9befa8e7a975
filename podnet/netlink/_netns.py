"""Network namespaces: create, delete, and run code inside one.

Why threads: setns(CLONE_NEWNET) changes only the calling thread, and /proc/sys/net and
new sockets follow that thread's namespace. So work for another namespace runs in a
short-lived thread that enters it and is never reused; the caller's thread never moves.
A netlink socket created in such a thread stays bound to that namespace, which is how
`podnet.netlink` talks to a namespace without pyroute2's fork-per-socket helper.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from collections.abc import Callable
from typing import TypeVar

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MNT_DETACH = 2
DEFAULT_NETNS_DIR = "/var/run/netns"

T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(OSError):
    """A namespace could not be created, entered or removed."""


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise NetnsError(err, f"{what}: {os.strerror(err)}")


def netns_path(name_or_path: str, netns_dir: str = DEFAULT_NETNS_DIR) -> str:
    return name_or_path if "/" in name_or_path else os.path.join(netns_dir, name_or_path)


def _in_thread(func: Callable[[], T]) -> T:
    box: dict[str, object] = {}

    def runner() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=runner, name="podnet-netns")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def run_in_netns(path: str, func: Callable[[], T]) -> T:
    """Call `func` in a fresh thread that has entered the namespace at `path`."""

    def enter_and_run() -> T:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NetnsError(errno.ENOENT, f"network namespace {path} does not exist") from None
        try:
            _check(_libc.setns(fd, CLONE_NEWNET), f"setns {path}")
        finally:
            os.close(fd)
        return func()

    return _in_thread(enter_and_run)


def create_netns(path: str) -> str:
    """A new, empty network namespace bind-mounted at `path` (as `ip netns add` and
    containerd do). Fails if something already exists there."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)

    def unshare_and_mount() -> None:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        source = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
        _check(
            _libc.mount(source, path.encode(), None, MS_BIND, None),
            f"bind mount of new netns on {path}",
        )
        # The thread dies with the namespace still alive: the bind mount holds it.

    try:
        _in_thread(unshare_and_mount)
    except BaseException:
        _unlink_quietly(path)
        raise
    return path


def delete_netns(path: str) -> None:
    """Unmount and remove a namespace file; a missing one is already deleted."""
    ret = _libc.umount2(path.encode(), MNT_DETACH)
    if ret != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):  # EINVAL: not a mount point
            raise NetnsError(err, f"umount {path}: {os.strerror(err)}")
    _unlink_quietly(path)


def is_netns(path: str) -> bool:
    """Whether `path` is a live network namespace (a bind mount of an nsfs inode)."""
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path) or ".").st_dev
    except OSError:
        return False


def write_sysctl(path: str, values: dict[str, str | int]) -> None:
    """Write net.* sysctls inside the namespace at `path` (/proc/sys/net follows the thread)."""

    def write_all() -> None:
        for key, value in values.items():
            with open("/proc/sys/" + key.replace(".", "/"), "w") as handle:
                handle.write(str(value))

    run_in_netns(path, write_all)


def read_sysctl(path: str, key: str) -> str:
    def read() -> str:
        with open("/proc/sys/" + key.replace(".", "/")) as handle:
            return handle.read().strip()

    return run_in_netns(path, read)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

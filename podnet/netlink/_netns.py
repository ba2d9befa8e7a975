"""Network namespaces: create, delete, and run code inside one.

setns(CLONE_NEWNET) changes only the calling thread, and /proc/sys/net and new sockets
follow that thread's namespace. `run_in_netns` is the one place that enters a namespace:
the calling thread enters it, runs the function and goes back to the namespace it came
from in `finally`, whatever the function did. A netlink socket created inside stays
bound to that namespace, which is how `podnet.netlink` talks to a namespace without
pyroute2's fork-per-socket helper.

Why not a fresh thread per call, as this module once did: starting a thread and waiting
for it costs ~70 us of CPU, and on a busy node the new thread waits for a CPU for
milliseconds; a pod's ADD entered namespaces twice. Two setns() calls cost ~5 us.
A thread that could not go back (the kernel refused the setns to the namespace it
holds open: never seen) is marked, and refuses to run anything in a namespace again.
"""

from __future__ import annotations

import errno
import os
from _thread import _local, get_native_id
from collections.abc import Callable

from podnet.netlink import _libc

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2
DEFAULT_NETNS_DIR = "/var/run/netns"
# The namespace of the calling thread (setns moves one thread, not the process).
OWN_NETNS = "/proc/thread-self/ns/net"
# The filesystems a namespace file lives on: nsfs (a bind mount of one, /proc/PID/ns/net
# on current kernels) and proc (older kernels), as containernetworking's pkg/ns checks.
NSFS_MAGIC = 0x6E736673
PROC_SUPER_MAGIC = 0x9FA0
# ioctl(fd, NS_GET_NSTYPE) names the kind of an nsfs file (Linux 4.11+): the filesystem
# check alone lets a mount or PID namespace file through, which setns then refuses.
NS_GET_NSTYPE = 0xB703


class NetnsError(OSError):
    """A namespace could not be created, entered or removed."""


class NotANetns(NetnsError):
    """The path names a file that is not a namespace (a FIFO, a regular file...)."""


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = _libc.get_errno()
        raise NetnsError(err, f"{what}: {os.strerror(err)}")


def netns_id(path: str = OWN_NETNS) -> tuple[int, int]:
    """A namespace's identity, the (device, inode) of its file: two paths (a bind mount
    under /var/run/netns, /proc/PID/ns/net) can name one namespace. Default: the calling
    thread's. OSError when nothing is at `path`."""
    info = os.stat(path)
    return info.st_dev, info.st_ino


def netns_path(name_or_path: str, netns_dir: str = DEFAULT_NETNS_DIR) -> str:
    return name_or_path if "/" in name_or_path else os.path.join(netns_dir, name_or_path)


def _in_thread(func: Callable[[], T]) -> T:
    box: dict[str, object] = {}

    def runner() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    import threading  # creating a namespace only, never a pod's path

    thread = threading.Thread(target=runner, name="podnet-netns")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


class _Stranded(_local):  # threading.local is _thread._local; threading itself costs ~1 ms
    """Set on a thread that could not return to its own namespace."""

    namespace_error: str = ""


_stranded = _Stranded()


def _setns(fd: int, what: str) -> None:
    _check(_libc.setns(fd, CLONE_NEWNET), what)


def run_in_netns(path: str, func: Callable[[], T]) -> T:
    """Call `func` with the calling thread inside the namespace at `path`; the thread is
    back in its own namespace when this returns or raises."""
    if _stranded.namespace_error:
        raise NetnsError(errno.EPERM, _stranded.namespace_error)
    target = open_netns(path)
    try:
        own = os.open(OWN_NETNS, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target, f"setns {path}")
            try:
                return func()
            finally:
                try:
                    _setns(own, "setns back to the thread's own namespace")
                except NetnsError as exc:
                    _stranded.namespace_error = f"this thread is stranded in {path}: {exc}"
                    raise
        finally:
            os.close(own)
    finally:
        os.close(target)


def open_netns(path: str) -> int:
    """A descriptor of the namespace file at `path`, checked to be one. O_NONBLOCK: a
    FIFO put there would otherwise block the open until a writer came; the filesystem
    check then refuses it and anything else that is not a namespace (NotANetns)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise NetnsError(errno.ENOENT, f"network namespace {path} does not exist") from None
    except OSError as exc:
        raise NetnsError(
            exc.errno, f"cannot open network namespace {path}: {exc.strerror}"
        ) from None
    try:
        magic = _fs_magic(fd)
        if magic not in (NSFS_MAGIC, PROC_SUPER_MAGIC):
            raise NotANetns(
                errno.EINVAL, f"{path} is not a network namespace (filesystem magic {magic:#x})"
            )
        kind = _libc.ioctl(fd, NS_GET_NSTYPE)
        # -1: a kernel or file that cannot tell (proc on old kernels); setns decides then
        if kind != -1 and kind != CLONE_NEWNET:
            raise NotANetns(
                errno.EINVAL, f"{path} is not a network namespace (namespace type {kind:#x})"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def _fs_magic(fd: int) -> int:
    magic = _libc.fstatfs_type(fd)
    if magic < 0:
        _check(-1, "fstatfs")
    return magic


def _share_netns_dir(directory: str) -> None:
    """Make the standard namespace directory a shared mount of itself, as `ip netns add`
    does before its first namespace. Done here too because iproute2 does it only when the
    directory is not a mount yet: its bind mount of the directory onto itself would
    otherwise cover the namespaces mounted before it, which then can be neither seen nor
    deleted (unlink says EBUSY) until the machine restarts. Other directories (a test's
    temp dir, containerd's state dir) are left as they are."""
    if os.path.realpath(directory) != os.path.realpath(DEFAULT_NETNS_DIR):
        return
    target = directory.encode()
    if _libc.mount(b"none", target, None, MS_SHARED | MS_REC, None) == 0:
        return
    if _libc.get_errno() != errno.EINVAL:  # EINVAL: not a mount point yet
        _check(-1, f"make {directory} a shared mount")
    _check(
        _libc.mount(target, target, None, MS_BIND | MS_REC, None),
        f"bind mount of {directory} onto itself",
    )
    _check(
        _libc.mount(b"none", target, None, MS_SHARED | MS_REC, None),
        f"make {directory} a shared mount",
    )


def create_netns(path: str) -> str:
    """A new, empty network namespace bind-mounted at `path` (as `ip netns add` and
    containerd do). Fails if something already exists there."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    _share_netns_dir(directory)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)

    def unshare_and_mount() -> None:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        source = f"/proc/self/task/{get_native_id()}/ns/net".encode()
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
        err = _libc.get_errno()
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

"""Host-side cleanup for the lab's runtimes: mounts, cgroups and processes, each found
precisely (under one directory, one cgroup path, one socket) so that nothing belonging to
anyone else on the machine is touched."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import time

MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)


def _unescape_mountinfo(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    out, index = [], 0
    while index < len(field):
        if field[index] == "\\" and field[index + 1 : index + 4].isdigit():
            out.append(chr(int(field[index + 1 : index + 4], 8)))
            index += 4
        else:
            out.append(field[index])
            index += 1
    return "".join(out)


def mounts_under(directory: str) -> list[str]:
    """Mount points at or below `directory`, deepest first (the order to unmount them)."""
    directory = os.path.realpath(directory)
    found = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            point = _unescape_mountinfo(line.split()[4])
            if point == directory or point.startswith(directory + "/"):
                found.append(point)
    return sorted(set(found), key=lambda p: (p.count("/"), len(p)), reverse=True)


def unmount_all_under(directory: str) -> None:
    for point in mounts_under(directory):
        if _libc.umount2(point.encode(), MNT_DETACH) != 0:
            err = ctypes.get_errno()
            if err not in (errno.EINVAL, errno.ENOENT):
                raise OSError(err, f"umount {point}: {os.strerror(err)}")


def cgroup_mounts() -> list[str]:
    """Mount points of every cgroup hierarchy (v1 controllers, and cgroup2 if mounted)."""
    points = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                points.append(_unescape_mountinfo(fields[4]))
    return points


def remove_cgroup(path: str) -> list[str]:
    """rmdir the cgroup `path` (e.g. "/podnet-1234") and what is left below it, in every
    hierarchy; returns the ones that could not go (a process still in them)."""
    problems = []
    for mount in cgroup_mounts():
        top = os.path.join(mount, path.lstrip("/"))
        if not os.path.isdir(top):
            continue
        for directory, _, _ in sorted(os.walk(top), key=lambda w: w[0].count("/"), reverse=True):
            try:
                os.rmdir(directory)
            except OSError as exc:
                problems.append(f"rmdir {directory}: {exc.strerror}")
    return problems


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def shim_pids(socket_path: str) -> list[int]:
    """PIDs of containerd shims started for the containerd listening on `socket_path`:
    their command line carries `-address <socket_path>`, which no other shim has."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        args = _cmdline(int(entry))
        if not args or "containerd-shim" not in os.path.basename(args[0]):
            continue
        for flag, value in zip(args, args[1:], strict=False):
            if flag == "-address" and value == socket_path:
                pids.append(int(entry))
                break
    return pids


def alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie, waiting for a parent that is not us, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def reap(pid: int | None) -> None:
    """Collect the exit of a daemon this process spawned (no zombie); one started by
    another process (the lab CLI that ran `up`) is not our child, and init reaps it."""
    if pid is not None:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def kill_and_wait(pids: list[int], *, timeout: float = 5.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)

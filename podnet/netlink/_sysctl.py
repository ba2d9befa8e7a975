"""Per-device sysctls, named by their path under /proc/sys ("net/ipv4/conf/eth0/arp_notify").

Paths, not dotted keys, because device names may contain dots ("cni0.100"). /proc/sys/net
follows the calling thread's namespace, so the caller's own namespace is written from
the calling thread and another one from a thread that entered it.
"""

from __future__ import annotations

import os

from podnet.netlink._netns import run_in_netns


def _read(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 64).strip()
    except OSError:
        return None
    finally:
        os.close(fd)


def _write(values: dict[str, str], *, best_effort: bool, read_first: bool) -> list[str]:
    # os.open/os.write: a file object costs four more system calls per key (fstat, ioctl,
    # two lseeks), and an ADD writes five of these.
    failed = []
    for key, value in values.items():
        path = f"/proc/sys/{key}"
        data = value.encode()
        if read_first and _read(path) == data:
            continue
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError:
            # e.g. IPv6 disabled: the key does not exist. The reference ignores these too.
            if not best_effort:
                raise
            failed.append(key)
    return failed


def set_sysctls(
    values: dict[str, str],
    *,
    netns: str = "",
    best_effort: bool = False,
    read_first: bool = False,
) -> list[str]:
    """Write sysctls in the namespace at `netns` (the caller's own when empty). With
    `best_effort`, keys that cannot be written are returned instead of raising. With
    `read_first`, a key that already holds its value is not written: writing some (the
    forwarding switches) takes the kernel's rtnl lock, retrying while another holds it,
    where reading takes nothing."""
    if netns:
        return run_in_netns(
            netns, lambda: _write(values, best_effort=best_effort, read_first=read_first)
        )
    return _write(values, best_effort=best_effort, read_first=read_first)

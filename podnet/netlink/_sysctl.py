"""Per-device sysctls, named by their path under /proc/sys ("net/ipv4/conf/eth0/arp_notify").

Paths, not dotted keys, because device names may contain dots ("cni0.100"). /proc/sys/net
follows the calling thread's namespace, so the caller's own namespace is written from
the calling thread and another one from a thread that entered it.
"""

from __future__ import annotations

from podnet.netlink._netns import run_in_netns


def _write(values: dict[str, str], *, best_effort: bool) -> list[str]:
    failed = []
    for key, value in values.items():
        try:
            with open(f"/proc/sys/{key}", "w") as handle:
                handle.write(value)
        except OSError:
            # e.g. IPv6 disabled: the key does not exist. The reference ignores these too.
            if not best_effort:
                raise
            failed.append(key)
    return failed


def set_sysctls(values: dict[str, str], *, netns: str = "", best_effort: bool = False) -> list[str]:
    """Write sysctls in the namespace at `netns` (the caller's own when empty). With
    `best_effort`, keys that cannot be written are returned instead of raising."""
    if netns:
        return run_in_netns(netns, lambda: _write(values, best_effort=best_effort))
    return _write(values, best_effort=best_effort)

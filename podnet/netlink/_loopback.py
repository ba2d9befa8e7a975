"""Bringing up `lo` in a pod's namespace, as containerd does before the CNI chain runs
(`UseInternalLoopback`); a fresh namespace has lo down."""

from __future__ import annotations

from podnet.netlink._netns import NetnsError, run_in_netns


def bring_up_loopback(netns: str) -> None:
    """Set `lo` up inside the namespace at the path `netns`."""

    def bring_up() -> None:
        # Imported here: pyroute2 costs ~120 ms and most callers never need it. The
        # socket is opened in this thread, which has entered the namespace already.
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            with IPRoute() as ipr:
                indexes = ipr.link_lookup(ifname="lo")
                if not indexes:
                    raise NetnsError(19, f"no loopback device in {netns}")  # ENODEV
                ipr.link("set", index=indexes[0], state="up")
        except NetlinkError as exc:
            raise NetnsError(exc.code, f"set lo up in {netns}: {exc}") from exc

    run_in_netns(netns, bring_up)

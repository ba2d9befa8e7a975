"""An rtnetlink socket bound to one network namespace, and the link lookups every caller needs.

The socket is created in a thread that entered the namespace (`run_in_netns`) and handed to
pyroute2 by file descriptor: a socket stays in the namespace it was born in, so the handle
can then be used from any thread, and pyroute2 never forks its per-namespace helper (which
crashes grpc clients in the same process). pyroute2 is imported on first open, never at
module import, because it costs ~120 ms.

pyroute2's exceptions stop here: every call goes through `rtnl_errors`, which turns them
into `RtnlError` (an OSError with the kernel's errno).
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from podnet.netlink._netns import run_in_netns

T = TypeVar("T")

# A dump the kernel marks NLM_F_DUMP_INTR (the table changed under it) is simply retried.
_DUMP_RETRIES = 5


class RtnlError(OSError):
    """A netlink request failed; `errno` is the kernel's answer."""


@contextmanager
def rtnl_errors(what: str) -> Iterator[None]:
    """Translate pyroute2's NetlinkError into RtnlError, naming the request that failed."""
    try:
        yield
    except Exception as exc:
        from pyroute2.netlink.exceptions import NetlinkError

        if isinstance(exc, NetlinkError):
            code = exc.code or errno.EIO
            raise RtnlError(code, f"{what}: {os.strerror(code)}") from exc
        raise


@dataclass(frozen=True)
class LinkInfo:
    index: int
    name: str
    kind: str  # "veth", "bridge", "vxlan", ... ("" for loopback and other plain devices)
    mac: str
    mtu: int
    up: bool
    master: int | None


def _link_info(msg: Any) -> LinkInfo:
    kind = msg.get(("IFLA_LINKINFO", "IFLA_INFO_KIND")) or ""
    return LinkInfo(
        index=msg["index"],
        name=msg.get("IFLA_IFNAME"),
        kind=kind,
        mac=(msg.get("IFLA_ADDRESS") or "").lower(),
        mtu=msg.get("IFLA_MTU"),
        up=bool(msg["flags"] & 1),  # IFF_UP
        master=msg.get("IFLA_MASTER"),
    )


class Rtnl:
    """One rtnetlink socket inside one namespace (None: the caller's own namespace)."""

    def __init__(self, ipr: Any, netns: str | None) -> None:
        self.ipr = ipr
        self.netns = netns

    @classmethod
    def open(cls, netns: str | None = None) -> Rtnl:
        from pyroute2 import IPRoute

        def new_socket() -> socket.socket:
            return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE)

        sock = new_socket() if netns is None else run_in_netns(netns, new_socket)
        try:
            ipr = IPRoute(fileno=sock.fileno())
        except BaseException:
            sock.close()
            raise
        sock.detach()  # pyroute2 owns the descriptor now and closes it
        return cls(ipr, netns)

    def close(self) -> None:
        self.ipr.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def dump(self, what: str, request: Callable[[], Any]) -> list[Any]:
        """Run a dump request to completion, retrying one the kernel says was interrupted."""
        from pyroute2.netlink.exceptions import NetlinkDumpInterrupted

        for attempt in range(_DUMP_RETRIES):
            try:
                with rtnl_errors(what):
                    return list(request())
            except NetlinkDumpInterrupted:
                if attempt == _DUMP_RETRIES - 1:
                    raise RtnlError(errno.EAGAIN, f"{what}: dump kept being interrupted") from None
        raise AssertionError("unreachable")

    def find_link(self, name: str) -> LinkInfo | None:
        return self._get_link(f"look up link {name}", ifname=name)

    def link_by_index(self, index: int) -> LinkInfo | None:
        return self._get_link(f"look up link #{index}", index=index)

    def _get_link(self, what: str, **match: Any) -> LinkInfo | None:
        try:
            with rtnl_errors(what):
                msgs = self.ipr.link("get", **match)
        except RtnlError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise
        return _link_info(msgs[0]) if msgs else None

    def link(self, name: str) -> LinkInfo:
        """The link called `name`; RtnlError(ENODEV) when there is none."""
        info = self.find_link(name)
        if info is None:
            raise RtnlError(errno.ENODEV, f"link {name} not found")
        return info

    def links(self) -> list[LinkInfo]:
        return [_link_info(msg) for msg in self.dump("dump links", self.ipr.get_links)]

    def set_up(self, index: int) -> None:
        with rtnl_errors(f"set link #{index} up"):
            self.ipr.link("set", index=index, state="up")

    def set_mtu(self, index: int, mtu: int) -> None:
        with rtnl_errors(f"set link #{index} mtu {mtu}"):
            self.ipr.link("set", index=index, mtu=mtu)

    def set_mac(self, index: int, mac: str) -> None:
        with rtnl_errors(f"set link #{index} address {mac}"):
            self.ipr.link("set", index=index, address=mac)

    def delete_link(self, index: int) -> None:
        """Delete a link; one that is already gone counts as deleted."""
        try:
            with rtnl_errors(f"delete link #{index}"):
                self.ipr.link("del", index=index)
        except RtnlError as exc:
            if exc.errno != errno.ENODEV:
                raise

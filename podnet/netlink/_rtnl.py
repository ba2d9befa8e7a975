"""An rtnetlink handle bound to one network namespace, the errors it raises, and the link
lookups every caller needs.

The sockets for another namespace are created by a thread that entered it
(`run_in_netns`): a socket stays in the namespace it was born in, so the handle can then
be used from any thread, and pyroute2 never forks its per-namespace helper (which
crashes grpc clients in the same process).

A handle holds two sockets. The pod path (links, addresses, routes of ADD and DEL) uses
the first through `podnet.netlink._nlmsg`, without pyroute2. The second is handed to
pyroute2 only when something asks for `.ipr` (VLANs, neighbours, vxlan, ...): pyroute2
costs ~120 ms to import, which a plugin running in-process should not pay for nothing.

pyroute2's NetlinkError never leaves this package: `netlink_errors` turns it into
`NetlinkError` (an OSError with the kernel's errno), or `LinkNotFound` for a missing
device, at the boundary of every request; `raw_errors` does the same for the first
socket's refusals.
"""

from __future__ import annotations

import _socket
import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

from podnet.netlink._netns import run_in_netns
from podnet.netlink._nlmsg import NLM_F_DUMP_INTR, NetlinkRequestError, NetlinkSocket

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any

_DUMP_ATTEMPTS = 10


class NetlinkError(OSError):
    """A netlink request failed; `errno` is the kernel's answer."""


# The agent's modules call it by this name.
RtnlError = NetlinkError


class LinkNotFound(NetlinkError):
    """No network device by that name or index."""


@contextmanager
def netlink_errors(what: str) -> Iterator[None]:
    """Raise pyroute2's errors that happen inside as podnet's, naming what failed."""
    try:
        yield
    except Exception as exc:
        from pyroute2.netlink.exceptions import NetlinkError as PyrouteNetlinkError

        if not isinstance(exc, PyrouteNetlinkError):
            raise
        code = int(exc.code) if isinstance(exc.code, int) and exc.code > 0 else errno.EIO
        kind = LinkNotFound if code == errno.ENODEV else NetlinkError
        raise kind(code, f"{what}: {os.strerror(code)}") from exc


rtnl_errors = netlink_errors


@contextmanager
def raw_errors(what: str, *, missing: tuple[int, ...] = (errno.ENODEV,)) -> Iterator[None]:
    """Refusals on the handle's own socket as podnet's errors; errnos in `missing`
    mean the device is not there (LinkNotFound)."""
    try:
        yield
    except NetlinkRequestError as exc:
        code = exc.errno or errno.EIO
        if code in missing:
            raise LinkNotFound(errno.ENODEV, f"{what}: {os.strerror(errno.ENODEV)}") from None
        raise NetlinkError(code, f"{what}: {os.strerror(code)}") from None


def _route_socket() -> _socket.socket:
    return _socket.socket(_socket.AF_NETLINK, _socket.SOCK_DGRAM, _socket.NETLINK_ROUTE)


def _socket_pair() -> tuple[_socket.socket, _socket.socket]:
    """(ours, bound; pyroute2's spare, which it binds itself)."""
    ours = _route_socket()
    try:
        ours.bind((0, 0))
        return ours, _route_socket()
    except BaseException:
        ours.close()
        raise


class Rtnl:
    """Route-netlink sockets in one namespace. Use as a context manager, or `close()`.
    `netns` is the namespace's path; "" or None for the caller's own.

    `Rtnl(ipr, netns)` wraps an existing pyroute2 object (tests use fakes); handles from
    `open()` have their own socket (`nl`) and build `ipr` on first use."""

    def __init__(
        self,
        ipr: Any = None,
        netns: str | None = None,
        *,
        sock: _socket.socket | None = None,
        spare: _socket.socket | None = None,
    ) -> None:
        self._ipr = ipr
        self.netns = netns
        self._nl = NetlinkSocket(sock) if sock is not None else None
        self._spare = spare

    @classmethod
    def open(cls, netns: str | None = None) -> Rtnl:
        """A handle for the namespace at path `netns`, or the caller's own when empty.
        A missing namespace raises NetnsError (ENOENT)."""
        sock, spare = run_in_netns(netns, _socket_pair) if netns else _socket_pair()
        return cls(None, netns, sock=sock, spare=spare)

    @property
    def nl(self) -> NetlinkSocket:
        if self._nl is None:
            raise NetlinkError(errno.EBADF, "this handle has no socket of its own")
        return self._nl

    @property
    def ipr(self) -> Any:
        """pyroute2's IPRoute on the spare socket, made (and pyroute2 imported) on first use."""
        if self._ipr is None:
            if self._spare is None:
                raise NetlinkError(errno.EBADF, "this handle is closed")
            from pyroute2 import IPRoute

            # groups=0: no multicast subscriptions, so no events queue up behind replies.
            self._ipr = IPRoute(fileno=self._spare.fileno(), groups=0)
            self._spare.detach()  # pyroute2 owns the descriptor now and closes it
            self._spare = None
        return self._ipr

    def close(self) -> None:
        if self._nl is not None:
            self._nl.close()
        if self._spare is not None:
            self._spare.close()
            self._spare = None
        if self._ipr is not None:
            self._ipr.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """One request through pyroute2's `method` (link, addr, route, ...)."""
        with netlink_errors(what):
            return getattr(self.ipr, method)(*args, **kwargs)

    def dump(self, what: str, request: str | Callable[[], Any], **kwargs: Any) -> list[Any]:
        """A dump, repeated while the kernel flags it interrupted by a concurrent change
        (NLM_F_DUMP_INTR), as the reference plugins' netlinksafe package does. `request`
        is a pyroute2 method name (called with "dump" and `kwargs`) or a callable."""
        from pyroute2.netlink.exceptions import NetlinkDumpInterrupted

        def fetch() -> Any:
            if isinstance(request, str):
                return getattr(self.ipr, request)("dump", **kwargs)
            return request()

        for _ in range(_DUMP_ATTEMPTS):
            try:
                with netlink_errors(what):
                    messages = list(fetch())
            except NetlinkDumpInterrupted:
                continue
            if not any(m["header"]["flags"] & NLM_F_DUMP_INTR for m in messages):
                return messages
        raise NetlinkError(errno.EINTR, f"{what}: dump kept being interrupted")

    def set_up(self, index: int) -> None:
        self.call(f"set link #{index} up", "link", "set", index=index, state="up")

    def set_mtu(self, index: int, mtu: int) -> None:
        self.call(f"set link #{index} mtu {mtu}", "link", "set", index=index, mtu=mtu)

    def set_mac(self, index: int, mac: str) -> None:
        self.call(f"set link #{index} address {mac}", "link", "set", index=index, address=mac)

    def delete_link(self, index: int) -> None:
        """Delete a link; one that is already gone counts as deleted."""
        try:
            self.call(f"delete link #{index}", "link", "del", index=index)
        except LinkNotFound:
            pass


def open_rtnl(netns: str = "") -> Rtnl:
    """A handle for the namespace at path `netns`, or for the caller's own when empty."""
    return Rtnl.open(netns)

"""rtnetlink requests built and read with `struct`, for the operations every pod ADD and
DEL makes (links, addresses, routes).

Why not pyroute2 for these: pyroute2 0.9 runs an asyncio loop and a generic NLA
marshaller per request, ~0.3-0.7 ms of CPU each, and a bridge ADD makes about a dozen
requests; here one costs tens of microseconds, and nothing is imported that the
interpreter does not already have. Everything less frequent (VLANs, neighbours, FDB,
vxlan, tagged routes) still goes through pyroute2. Sockets are the interpreter's built-in
`_socket`'s: the `socket` module wraps every constant in an IntEnum at import, ~11 million
instructions that a plugin run in-process (the launcher's fallback) would pay per pod.

Message layout (linux/netlink.h, linux/rtnetlink.h): a 16-byte nlmsghdr, a fixed family
header (ifinfomsg, ifaddrmsg, rtmsg), then attributes, each a 4-byte (len, type) header
and a payload padded to 4 bytes. Integers are in host byte order.
"""

from __future__ import annotations

import _socket
import errno
import os
import struct
from collections.abc import Iterator

NLMSG_ERROR = 2
NLMSG_DONE = 3

NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP_INTR = 0x10
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_DUMP = 0x300

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_SETLINK = 19
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_GETROUTE = 26

NLA_F_NESTED = 0x8000
_NLA_TYPE_MASK = 0x3FFF

NLMSGHDR = struct.Struct("=IHHII")
IFINFOMSG = struct.Struct("=BxHiII")
IFADDRMSG = struct.Struct("=BBBBi")
RTMSG = struct.Struct("=BBBBBBBBI")
_NLA = struct.Struct("=HH")
_U8 = struct.Struct("=B")
_U32 = struct.Struct("=I")
_I32 = struct.Struct("=i")

_RECV_BUFFER = 1 << 16  # a dump datagram is at most 32 KiB
_DUMP_ATTEMPTS = 10


class NetlinkRequestError(OSError):
    """The kernel refused a request; errno is its answer. `podnet.netlink` turns it into
    its own NetlinkError/LinkNotFound with the operation's name."""


def _pad(size: int) -> int:
    return (size + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    size = _NLA.size + len(payload)
    return _NLA.pack(size, kind) + payload + b"\0" * (_pad(size) - size)


def attr_str(kind: int, text: str) -> bytes:
    return attr(kind, text.encode() + b"\0")


def attr_u8(kind: int, value: int) -> bytes:
    return attr(kind, _U8.pack(value))


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, _U32.pack(value))


def nested(kind: int, *attrs: bytes, flag: bool = False) -> bytes:
    """A nested attribute; `flag` sets NLA_F_NESTED, which some kernel parsers require
    (IFLA_PROTINFO for bridge ports) and others ignore."""
    return attr(kind | (NLA_F_NESTED if flag else 0), b"".join(attrs))


def parse_attrs(data: bytes, offset: int = 0, end: int | None = None) -> dict[int, bytes]:
    """Attribute type -> payload (the last one wins, as in the kernel's own parser)."""
    out: dict[int, bytes] = {}
    end = len(data) if end is None else end
    while offset + _NLA.size <= end:
        size, kind = _NLA.unpack_from(data, offset)
        if size < _NLA.size or offset + size > end:
            break
        out[kind & _NLA_TYPE_MASK] = data[offset + _NLA.size : offset + size]
        offset += _pad(size)
    return out


def u8(data: bytes) -> int:
    return int(_U8.unpack_from(data)[0])


def u32(data: bytes) -> int:
    return int(_U32.unpack_from(data)[0])


def i32(data: bytes) -> int:
    return int(_I32.unpack_from(data)[0])


def cstr(data: bytes) -> str:
    return data.split(b"\0", 1)[0].decode(errors="replace")


def ifinfomsg(*, family: int = 0, index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return IFINFOMSG.pack(family, 0, index, flags, change)


def ifaddrmsg(
    *, family: int, prefixlen: int = 0, flags: int = 0, scope: int = 0, index: int = 0
) -> bytes:
    return IFADDRMSG.pack(family, prefixlen, flags, scope, index)


def rtmsg(
    *,
    family: int,
    dst_len: int = 0,
    table: int = 0,
    protocol: int = 0,
    scope: int = 0,
    kind: int = 0,
) -> bytes:
    return RTMSG.pack(family, dst_len, 0, 0, table, protocol, scope, kind, 0)


class NetlinkSocket:
    """Requests and their answers on one NETLINK_ROUTE socket. Not thread-safe: a handle
    belongs to one thread at a time. Answers to an earlier request that was abandoned
    half-way (an exception while reading a dump) carry an older sequence number and are
    skipped, so the socket stays usable."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self._seq = 0
        self._buffer = bytearray(_RECV_BUFFER)

    def close(self) -> None:
        self.sock.close()

    def fileno(self) -> int:
        return self.sock.fileno()

    def request(self, msg_type: int, body: bytes, flags: int = 0) -> list[tuple[int, bytes]]:
        """Send one request with NLM_F_ACK and return the (type, payload) of every message
        answered before the acknowledgement. A refusal raises NetlinkRequestError."""
        seq = self._send(msg_type, body, flags | NLM_F_ACK)
        out: list[tuple[int, bytes]] = []
        for kind, _, payload in self._receive(seq):
            if kind == NLMSG_ERROR:
                code = -i32(payload)
                if code:
                    raise NetlinkRequestError(code, os.strerror(code))
                return out
            out.append((kind, payload))
        raise NetlinkRequestError(errno.EIO, "netlink socket closed")

    def query(self, msg_type: int, body: bytes) -> bytes:
        """Send one GET request without NLM_F_ACK and return the payload of its answer:
        the kernel answers a GET with the object or with an error, so asking for an
        acknowledgement as well would only cost a second datagram to read."""
        seq = self._send(msg_type, body, 0)
        for kind, _, payload in self._receive(seq):
            if kind == NLMSG_ERROR:
                code = -i32(payload)
                raise NetlinkRequestError(code or errno.EIO, os.strerror(code or errno.EIO))
            return payload
        raise NetlinkRequestError(errno.EIO, "netlink socket closed")

    def dump(self, msg_type: int, body: bytes) -> list[bytes]:
        """A dump's payloads, repeated while the kernel flags it interrupted by a
        concurrent change (NLM_F_DUMP_INTR), as the reference's netlinksafe package."""
        for _ in range(_DUMP_ATTEMPTS):
            payloads, interrupted = self._dump_once(msg_type, body)
            if not interrupted:
                return payloads
        raise NetlinkRequestError(errno.EINTR, "dump kept being interrupted")

    def _dump_once(self, msg_type: int, body: bytes) -> tuple[list[bytes], bool]:
        seq = self._send(msg_type, body, NLM_F_DUMP)
        payloads: list[bytes] = []
        interrupted = False
        for kind, msg_flags, payload in self._receive(seq):
            interrupted = interrupted or bool(msg_flags & NLM_F_DUMP_INTR)
            if kind == NLMSG_DONE:
                code = -i32(payload) if len(payload) >= 4 else 0
                if code:
                    raise NetlinkRequestError(code, os.strerror(code))
                return payloads, interrupted
            if kind == NLMSG_ERROR:
                code = -i32(payload)
                raise NetlinkRequestError(code or errno.EIO, os.strerror(code or errno.EIO))
            payloads.append(payload)
        raise NetlinkRequestError(errno.EIO, "netlink socket closed")

    def _send(self, msg_type: int, body: bytes, flags: int) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        size = NLMSGHDR.size + len(body)
        header = NLMSGHDR.pack(size, msg_type, flags | NLM_F_REQUEST, self._seq, 0)
        self.sock.send(header + body)
        return self._seq

    def _receive(self, seq: int) -> Iterator[tuple[int, int, bytes]]:
        """(type, flags, payload) of the messages answering `seq`, datagram by datagram."""
        buffer = self._buffer
        while True:
            size = self.sock.recv_into(buffer, len(buffer), _socket.MSG_TRUNC)
            if size == 0:
                return
            if size > len(buffer):
                raise NetlinkRequestError(errno.EMSGSIZE, "netlink answer larger than 64 KiB")
            data = bytes(buffer[:size])
            offset = 0
            while offset + NLMSGHDR.size <= size:
                length, kind, flags, msg_seq, _ = NLMSGHDR.unpack_from(data, offset)
                if length < NLMSGHDR.size:
                    break
                if msg_seq == seq:
                    yield kind, flags, data[offset + NLMSGHDR.size : offset + length]
                offset += _pad(length)

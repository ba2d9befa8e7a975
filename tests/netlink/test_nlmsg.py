"""The rtnetlink codec and request loop without a kernel; pyroute2's decoders serve as an
independent reader of what podnet encodes."""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from typing import Any

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg as pyroute2_ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg as pyroute2_ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg as pyroute2_rtmsg

from podnet.netlink import _nlmsg as nl
from podnet.netlink._addrs import _address_body
from podnet.netlink._links import decode_link


def framed(msg_type: int, body: bytes, *, seq: int = 1, flags: int = 0) -> bytes:
    return nl.NLMSGHDR.pack(nl.NLMSGHDR.size + len(body), msg_type, flags, seq, 0) + body


def decoded(cls: Any, msg_type: int, body: bytes) -> Any:
    msg = cls(framed(msg_type, body))
    msg.decode()
    return msg


@pytest.mark.parametrize(("payload", "size"), [(b"", 4), (b"a", 8), (b"abcd", 8), (b"abcde", 12)])
def test_attributes_are_padded_to_four_bytes(payload: bytes, size: int) -> None:
    encoded = nl.attr(7, payload)
    assert len(encoded) == size
    assert struct.unpack_from("=HH", encoded) == (4 + len(payload), 7)
    assert nl.parse_attrs(encoded + nl.attr_u32(8, 5)) == {7: payload, 8: struct.pack("=I", 5)}


def test_nested_flag_is_masked_when_reading() -> None:
    encoded = nl.nested(12, nl.attr_u8(4, 1), flag=True)
    assert struct.unpack_from("=HH", encoded)[1] == 12 | nl.NLA_F_NESTED
    assert nl.parse_attrs(nl.parse_attrs(encoded)[12]) == {4: b"\x01"}


def test_a_truncated_attribute_ends_the_parse() -> None:
    good = nl.attr_str(3, "eth0")
    assert nl.parse_attrs(good + struct.pack("=HH", 40, 5) + b"xx") == {3: b"eth0\0"}


def test_veth_request_as_pyroute2_reads_it() -> None:
    peer = nl.ifinfomsg() + nl.attr_str(3, "eth0") + nl.attr_u32(28, 9)
    body = (
        nl.ifinfomsg(flags=1, change=1)
        + nl.attr_str(3, "veth1234")
        + nl.attr_u32(4, 1450)
        + nl.attr_u32(10, 3)
        + nl.nested(18, nl.attr_str(1, "veth"), nl.nested(2, nl.attr(1, peer)))
    )
    msg = decoded(pyroute2_ifinfmsg, nl.RTM_NEWLINK, body)
    assert (msg["flags"], msg["change"]) == (1, 1)
    assert msg.get_attr("IFLA_IFNAME") == "veth1234"
    assert (msg.get_attr("IFLA_MTU"), msg.get_attr("IFLA_MASTER")) == (1450, 3)
    assert msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") == "veth"
    [(name, inner)] = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")["attrs"]
    assert name == "VETH_INFO_PEER"
    assert dict(inner["attrs"]) == {"IFLA_IFNAME": "eth0", "IFLA_NET_NS_FD": 9}


@pytest.mark.parametrize(("address", "nodad"), [("10.244.1.5/24", False), ("fd00:1::5/64", True)])
def test_address_request_as_pyroute2_reads_it(address: str, nodad: bool) -> None:
    interface = ipaddress.ip_interface(address)
    body = _address_body(4, interface, 0x02 if nodad else 0)
    msg = decoded(pyroute2_ifaddrmsg, nl.RTM_NEWADDR, body)
    assert (msg["index"], msg["prefixlen"]) == (4, interface.network.prefixlen)
    assert msg.get_attr("IFA_ADDRESS") == str(interface.ip)
    assert msg.get_attr("IFA_LOCAL") == (str(interface.ip) if interface.version == 4 else None)
    assert (msg.get_attr("IFA_FLAGS") or 0) == (0x02 if nodad else 0)


def test_route_request_as_pyroute2_reads_it() -> None:
    body = nl.rtmsg(family=socket.AF_INET, dst_len=16, table=254, protocol=4, kind=1)
    body += nl.attr_u32(15, 254) + nl.attr(1, ipaddress.ip_address("10.244.0.0").packed)
    body += nl.attr(5, ipaddress.ip_address("10.244.1.1").packed) + nl.attr_u32(4, 2)
    body += nl.nested(8, nl.attr_u32(2, 1400))
    msg = decoded(pyroute2_rtmsg, nl.RTM_NEWROUTE, body)
    assert (msg["dst_len"], msg["table"], msg["proto"], msg["type"]) == (16, 254, 4, 1)
    assert msg.get_attr("RTA_DST") == "10.244.0.0"
    assert msg.get_attr("RTA_GATEWAY") == "10.244.1.1"
    assert msg.get_attr("RTA_OIF") == 2
    assert msg.get_nested("RTA_METRICS", "RTAX_MTU") == 1400


def test_link_answer_decoded() -> None:
    payload = (
        nl.ifinfomsg(index=7, flags=0x1 | 0x100)
        + nl.attr_str(3, "cni0")
        + nl.attr(1, bytes.fromhex("0a580af40101"))
        + nl.attr_u32(4, 1450)
        + nl.attr_u8(16, 6)
        + nl.attr_u32(10, 2)
        + nl.attr(5, struct.pack("=i", 11))
        + nl.attr(37, struct.pack("=i", 0))
        + nl.nested(18, nl.attr_str(1, "bridge"))
    )
    link = decode_link(payload)
    assert (link.index, link.name, link.kind) == (7, "cni0", "bridge")
    assert link.mac == "0a:58:0a:f4:01:01"
    assert (link.mtu, link.admin_up, link.promisc, link.oper_state) == (1450, True, True, "UP")
    assert (link.master, link.peer_index, link.peer_in_other_netns) == (2, 11, True)


class FakeSocket:
    """Answers each request with scripted datagrams; records what was sent."""

    def __init__(self, answers: list[list[bytes]]) -> None:
        self.answers = answers
        self.sent: list[bytes] = []
        self.pending: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        seq = struct.unpack_from("=IHHII", data)[3]
        self.pending = [d.replace(b"SEQ!", struct.pack("=I", seq)) for d in self.answers.pop(0)]
        return len(data)

    def recv_into(self, buffer: bytearray, size: int, flags: int) -> int:
        data = self.pending.pop(0)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        pass


def message(msg_type: int, payload: bytes, *, seq: bytes = b"SEQ!", flags: int = 0) -> bytes:
    """One message as the kernel frames it: padded to 4 bytes, "SEQ!" replaced on send."""
    header = nl.NLMSGHDR.pack(nl.NLMSGHDR.size + len(payload), msg_type, flags, 0, 0)
    return header[:8] + seq + header[12:] + payload + b"\0" * (-len(payload) % 4)


def ack(code: int = 0) -> bytes:
    return message(nl.NLMSG_ERROR, struct.pack("=i", -code) + b"\0" * 16)


def handle(answers: list[list[bytes]]) -> tuple[nl.NetlinkSocket, FakeSocket]:
    fake = FakeSocket(answers)
    return nl.NetlinkSocket(fake), fake  # type: ignore[arg-type]


def test_answers_to_an_abandoned_request_are_skipped() -> None:
    stale = message(nl.RTM_NEWLINK, b"old", seq=struct.pack("=I", 999))
    sock, fake = handle([[stale + message(nl.RTM_NEWLINK, b"new"), ack()]])
    assert sock.request(nl.RTM_GETLINK, b"body") == [(nl.RTM_NEWLINK, b"new")]
    length, kind, flags, _, _ = nl.NLMSGHDR.unpack_from(fake.sent[0])
    assert (length, kind) == (nl.NLMSGHDR.size + 4, nl.RTM_GETLINK)
    assert flags == nl.NLM_F_REQUEST | nl.NLM_F_ACK


def test_a_refusal_carries_the_kernel_errno() -> None:
    sock, _ = handle([[ack(errno.EEXIST)]])
    with pytest.raises(nl.NetlinkRequestError) as info:
        sock.request(nl.RTM_NEWLINK, b"", nl.NLM_F_CREATE)
    assert info.value.errno == errno.EEXIST


@pytest.mark.parametrize("interrupted", [0, 1, 9])
def test_interrupted_dumps_are_repeated(interrupted: int) -> None:
    torn = [message(nl.RTM_NEWLINK, b"a", flags=nl.NLM_F_MULTI | nl.NLM_F_DUMP_INTR)]
    whole = [message(nl.RTM_NEWLINK, b"a", flags=nl.NLM_F_MULTI)]
    done = [message(nl.NLMSG_DONE, struct.pack("=i", 0))]
    answers = [torn + done] * interrupted + [whole + done]
    sock, fake = handle(answers)
    assert sock.dump(nl.RTM_GETLINK, b"") == [b"a"]
    assert len(fake.sent) == interrupted + 1


def test_a_dump_that_never_settles_is_an_error() -> None:
    torn = message(nl.RTM_NEWLINK, b"a", flags=nl.NLM_F_MULTI | nl.NLM_F_DUMP_INTR)
    done = message(nl.NLMSG_DONE, struct.pack("=i", 0))
    sock, _ = handle([[torn, done]] * 10)
    with pytest.raises(nl.NetlinkRequestError) as info:
        sock.dump(nl.RTM_GETLINK, b"")
    assert info.value.errno == errno.EINTR

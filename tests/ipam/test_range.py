"""Range canonicalisation: defaults and the reference's refusals, one case per line."""

from __future__ import annotations

import ipaddress

import pytest

from podnet.ipam import IPAMError, canonical_range, parse_cidr, parse_ip


def ip(text: str):
    return ipaddress.ip_address(text)


def make(subnet: str, start: str = "", end: str = "", gateway: str = ""):
    return canonical_range(
        parse_cidr(subnet),
        start=parse_ip(start) if start else None,
        end=parse_ip(end) if end else None,
        gateway=parse_ip(gateway) if gateway else None,
    )


@pytest.mark.parametrize(
    ("subnet", "start", "end", "gateway", "want"),
    [
        ("10.1.2.0/24", "", "", "", ("10.1.2.1", "10.1.2.254", "10.1.2.1")),
        ("10.1.2.0/30", "", "", "", ("10.1.2.1", "10.1.2.2", "10.1.2.1")),
        ("10.1.2.0/24", "10.1.2.10", "10.1.2.20", "", ("10.1.2.10", "10.1.2.20", "10.1.2.1")),
        ("10.1.2.0/24", "", "", "10.1.2.254", ("10.1.2.1", "10.1.2.254", "10.1.2.254")),
        # the gateway need not be in the subnet (the reference does not check it)
        ("10.1.2.0/24", "", "", "10.9.9.9", ("10.1.2.1", "10.1.2.254", "10.9.9.9")),
        ("10.0.0.0/8", "", "", "", ("10.0.0.1", "10.255.255.254", "10.0.0.1")),
        # IPv6: no broadcast, the last address is usable
        ("fd00::/120", "", "", "", ("fd00::1", "fd00::ff", "fd00::1")),
        ("fd00::/126", "", "", "", ("fd00::1", "fd00::3", "fd00::1")),
        ("fd00::/64", "fd00::100", "", "", ("fd00::100", "fd00::ffff:ffff:ffff:ffff", "fd00::1")),
        # an IPv4-mapped subnet is the IPv4 subnet, as Go reads it
        ("::ffff:10.1.2.0/120", "", "", "", ("10.1.2.1", "10.1.2.254", "10.1.2.1")),
    ],
)
def test_defaults(subnet, start, end, gateway, want):
    r = make(subnet, start, end, gateway)
    assert (str(r.start), str(r.end), str(r.gateway)) == want


@pytest.mark.parametrize(
    ("subnet", "start", "end", "gateway", "message"),
    [
        ("10.1.2.0/31", "", "", "", "Network 10.1.2.0/31 too small to allocate from"),
        ("10.1.2.0/32", "", "", "", "Network 10.1.2.0/32 too small to allocate from"),
        ("fd00::/127", "", "", "", "Network fd00::/127 too small to allocate from"),
        ("fd00::/128", "", "", "", "Network fd00::/128 too small to allocate from"),
        (
            "10.1.2.5/24",
            "",
            "",
            "",
            "Network has host bits set. For a subnet mask of length 24 the network "
            "address is 10.1.2.0",
        ),
        (
            "fd00::5/120",
            "",
            "",
            "",
            "Network has host bits set. For a subnet mask of length 120 the network "
            "address is fd00::",
        ),
        ("10.1.2.0/24", "10.1.3.1", "", "", "RangeStart 10.1.3.1 not in network 10.1.2.0/24"),
        ("10.1.2.0/24", "", "10.1.3.1", "", "RangeEnd 10.1.3.1 not in network 10.1.2.0/24"),
        ("10.1.2.0/24", "fd00::1", "", "", "RangeStart fd00::1 not in network 10.1.2.0/24"),
        ("10.1.2.0/24", "10.1.2.20", "10.1.2.10", "", "RangeStart 10.1.2.20 is after RangeEnd"),
        ("10.1.2.0/24", "", "", "fd00::1", "is not of the family of network 10.1.2.0/24"),
    ],
)
def test_refused(subnet, start, end, gateway, message):
    with pytest.raises(IPAMError) as info:
        make(subnet, start, end, gateway)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "text", ["10.1.2.0", "10.1.2.0/", "10.1.2.0/33", "10.1.2.0/024", "x/24", "fd00::/129", "/24"]
)
def test_bad_cidr_text(text):
    with pytest.raises(ValueError):
        parse_cidr(text)


@pytest.mark.parametrize(
    ("address", "inside"),
    [
        ("10.1.2.9", False),
        ("10.1.2.10", True),
        ("10.1.2.15", True),
        ("10.1.2.20", True),
        ("10.1.2.21", False),
        ("fd00::10", False),
        ("::ffff:10.1.2.12", True),
    ],
)
def test_contains(address, inside):
    r = make("10.1.2.0/24", "10.1.2.10", "10.1.2.20")
    assert r.contains(ip(address)) is inside


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        (("10.1.2.0/24", "", ""), ("10.1.2.0/24", "", ""), True),
        (("10.1.2.0/24", "10.1.2.1", "10.1.2.100"), ("10.1.2.0/24", "10.1.2.101", ""), False),
        (("10.1.2.0/24", "10.1.2.1", "10.1.2.100"), ("10.1.2.0/24", "10.1.2.100", ""), True),
        (("10.1.0.0/16", "", ""), ("10.1.2.0/24", "", ""), True),
        (("10.1.2.0/24", "", ""), ("10.1.3.0/24", "", ""), False),
        (("10.1.2.0/24", "", ""), ("fd00::/120", "", ""), False),
    ],
)
def test_overlaps(first, second, overlap):
    a, b = make(*first), make(*second)
    assert a.overlaps(b) is overlap
    assert b.overlaps(a) is overlap


@pytest.mark.parametrize(
    ("args", "size", "text"),
    [
        (("10.1.2.0/24",), 253, "10.1.2.1-10.1.2.254"),
        (("10.1.2.0/28",), 13, "10.1.2.1-10.1.2.14"),
        (("10.1.2.0/24", "10.1.2.10", "10.1.2.20"), 11, "10.1.2.10-10.1.2.20"),
        (("10.1.2.0/24", "10.1.2.1", "10.1.2.1"), 0, "10.1.2.1-10.1.2.1"),
        (("fd00::/120",), 254, "fd00::1-fd00::ff"),
    ],
)
def test_size_and_text(args, size, text):
    r = make(*args)
    assert r.size() == size
    assert str(r) == text

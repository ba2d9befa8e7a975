"""The round-robin order of host-local (the reference's allocator_test.go cases, and more)."""

from __future__ import annotations

import ipaddress

import pytest

from podnet.ipam import candidates, canonical_range, parse_cidr, parse_ip, range_set


def rng(subnet: str, start: str = "", end: str = "", gateway: str = ""):
    return canonical_range(
        parse_cidr(subnet),
        start=parse_ip(start) if start else None,
        end=parse_ip(end) if end else None,
        gateway=parse_ip(gateway) if gateway else None,
    )


def order(ranges, last: str = "") -> list[str]:
    s = range_set(ranges)
    return [str(c.address) for c in candidates(s, ipaddress.ip_address(last) if last else None)]


@pytest.mark.parametrize(
    ("ranges", "last", "want"),
    [
        # fresh: from rangeStart, skipping the gateway (.1)
        ([rng("10.0.0.0/29")], "", ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]),
        # after the last reserved address, wrapping around
        (
            [rng("10.0.0.0/29")],
            "10.0.0.4",
            ["10.0.0.5", "10.0.0.6", "10.0.0.2", "10.0.0.3", "10.0.0.4"],
        ),
        # the last reserved address was the end of the range
        (
            [rng("10.0.0.0/29")],
            "10.0.0.6",
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"],
        ),
        # a last reserved address outside the set is ignored
        (
            [rng("10.0.0.0/29")],
            "10.9.9.9",
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"],
        ),
        # the gateway in the middle of the range
        (
            [rng("10.0.0.0/29", gateway="10.0.0.4")],
            "",
            ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.0.6"],
        ),
        # last reserved just before the gateway
        (
            [rng("10.0.0.0/29", gateway="10.0.0.4")],
            "10.0.0.3",
            ["10.0.0.5", "10.0.0.6", "10.0.0.1", "10.0.0.2", "10.0.0.3"],
        ),
        # two ranges: on to the next range, then back to the first
        (
            [rng("10.0.0.0/30"), rng("10.0.1.0/30")],
            "",
            ["10.0.0.2", "10.0.1.2"],
        ),
        (
            [rng("10.0.0.0/30"), rng("10.0.1.0/30")],
            "10.0.0.2",
            ["10.0.1.2", "10.0.0.2"],
        ),
        (
            [
                rng("10.0.0.0/29", "10.0.0.2", "10.0.0.3"),
                rng("10.0.1.0/29", "10.0.1.5", "10.0.1.6"),
            ],
            "10.0.1.5",
            ["10.0.1.6", "10.0.0.2", "10.0.0.3", "10.0.1.5"],
        ),
        # a range whose only address is its gateway yields nothing
        ([rng("10.0.0.0/30", "10.0.0.1", "10.0.0.1")], "", []),
        # IPv6 includes the last address
        ([rng("fd00::/126")], "", ["fd00::2", "fd00::3"]),
        ([rng("fd00::/126")], "fd00::3", ["fd00::2", "fd00::3"]),
    ],
)
def test_round_robin_order(ranges, last, want):
    assert order(ranges, last) == want


def test_each_address_once_on_a_large_set():
    s = range_set([rng("10.0.0.0/22"), rng("10.0.8.0/24", "10.0.8.100", "10.0.8.200")])
    got = [c.address for c in candidates(s, ipaddress.ip_address("10.0.2.77"))]
    assert len(got) == len(set(got)) == s.size() == 1021 + 101
    assert str(got[0]) == "10.0.2.78"
    assert all(s.contains(a) for a in got)


def test_candidate_carries_prefix_and_gateway():
    s = range_set([rng("10.0.0.0/29", gateway="10.0.0.6")])
    first = next(candidates(s))
    assert (str(first.address), first.prefixlen, str(first.gateway)) == ("10.0.0.1", 29, "10.0.0.6")

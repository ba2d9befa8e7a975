"""Range sets: validation, lookup, free counts; overlap between sets."""

from __future__ import annotations

import ipaddress

import pytest

from podnet.ipam import (
    IPAMError,
    canonical_range,
    check_disjoint,
    count_free,
    parse_cidr,
    parse_ip,
    range_set,
)


def rng(subnet: str, start: str = "", end: str = ""):
    return canonical_range(
        parse_cidr(subnet),
        start=parse_ip(start) if start else None,
        end=parse_ip(end) if end else None,
    )


def ips(*texts: str):
    return [ipaddress.ip_address(t) for t in texts]


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ([], "empty range set"),
        ([rng("10.1.2.0/24"), rng("fd00::/120")], "mixed address families"),
        (
            [rng("10.1.2.0/24"), rng("10.1.2.0/25")],
            "subnets 10.1.2.1-10.1.2.254 and 10.1.2.1-10.1.2.126 overlap",
        ),
        (
            [rng("10.1.2.0/24", "10.1.2.1", "10.1.2.50"), rng("10.1.2.0/24", "10.1.2.50", "")],
            "overlap",
        ),
    ],
)
def test_invalid_sets(ranges, message):
    with pytest.raises(IPAMError) as info:
        range_set(ranges)
    assert message in str(info.value)


def test_split_range_set_lookup():
    s = range_set([rng("10.1.2.0/24", "10.1.2.1", "10.1.2.50"), rng("10.1.3.0/24")])
    assert str(s) == "10.1.2.1-10.1.2.50,10.1.3.1-10.1.3.254"
    assert s.range_for(ipaddress.ip_address("10.1.3.7")) == s.ranges[1]
    assert s.range_for(ipaddress.ip_address("10.1.2.51")) is None
    assert s.contains(ipaddress.ip_address("10.1.2.50"))
    assert s.size() == 49 + 253


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ([[rng("10.1.2.0/24")], [rng("10.1.2.0/24")]], "range set 0 overlaps with 1"),
        (
            [[rng("10.1.2.0/24")], [rng("fd00::/120")], [rng("10.1.0.0/16")]],
            "range set 0 overlaps with 2",
        ),
        (
            [[rng("10.1.2.0/24")], [rng("fd00::/120")], [rng("fd00::/64")]],
            "range set 1 overlaps with 2",
        ),
        ([[rng("10.1.2.0/24")], [rng("10.1.3.0/24")], [rng("fd00::/120")]], None),
    ],
)
def test_sets_disjoint(sets, message):
    built = [range_set(s) for s in sets]
    if message is None:
        check_disjoint(built)
        return
    with pytest.raises(IPAMError) as info:
        check_disjoint(built)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("reserved", "free"),
    [
        ((), 13),
        (("10.1.2.2", "10.1.2.3"), 11),
        (("10.1.2.2", "10.1.2.2"), 12),  # the same address twice counts once
        (("10.1.2.1",), 13),  # the gateway is never free anyway
        (("10.1.9.9", "fd00::2"), 13),  # outside the set
        (tuple(f"10.1.2.{i}" for i in range(2, 15)), 0),
    ],
)
def test_count_free(reserved, free):
    s = range_set([rng("10.1.2.0/28")])
    assert count_free(s, ips(*reserved)) == free

"""The protocol rules every plugin and the runtime share: one policy each."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from podnet.cni import (
    LEGACY_ATTACHMENTS_KEY,
    VALID_ATTACHMENTS_KEY,
    DecodingFailure,
    InvalidConfig,
    Result,
    fixup_result_version,
    is_int,
    parse_route,
    prev_result,
    valid_attachments,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, True),
        (-3, True),
        (True, False),
        (False, False),
        (1.0, False),
        ("1", False),
        (None, False),
    ],
)
def test_is_int_is_a_json_integer_and_no_boolean(value: object, expected: bool) -> None:
    assert is_int(value) is expected


def test_prev_result_absent_is_none_and_unreadable_is_a_decoding_failure() -> None:
    assert prev_result({}) is None
    assert prev_result({"prevResult": None}) is None
    good = {"cniVersion": "1.0.0", "ips": [{"address": "10.1.2.3/24"}]}
    prev = prev_result({"prevResult": good})
    assert isinstance(prev, Result)
    assert [str(ip.address) for ip in prev.ips] == ["10.1.2.3/24"]
    bad_results: list[object] = [
        [],
        {"cniVersion": "9.9.9"},
        {"cniVersion": "1.0.0", "ips": [{"address": "x"}]},
    ]
    for bad in bad_results:
        with pytest.raises(DecodingFailure, match="failed to parse prevResult") as info:
            prev_result({"prevResult": bad})
        assert info.value.code == 6


def test_valid_attachments_policy() -> None:
    listed = [{"containerID": " c1 ", "ifname": "eth0"}, {"containerID": "c2", "ifname": "net1"}]
    assert valid_attachments({VALID_ATTACHMENTS_KEY: listed}) == {("c1", "eth0"), ("c2", "net1")}
    assert valid_attachments({LEGACY_ATTACHMENTS_KEY: listed[1:]}) == {("c2", "net1")}
    assert valid_attachments({VALID_ATTACHMENTS_KEY: None}) == set(), "Go's nil slice"
    with pytest.raises(InvalidConfig, match=VALID_ATTACHMENTS_KEY):
        valid_attachments({})  # refuse rather than wipe every attachment
    bad_lists: list[object] = [
        {},
        [1],
        [{"containerID": "c1"}],
        [{"containerID": 1, "ifname": "eth0"}],
    ]
    for bad in bad_lists:
        with pytest.raises(DecodingFailure):
            valid_attachments({VALID_ATTACHMENTS_KEY: bad})


def test_fixup_result_version_fills_in_only_a_missing_version() -> None:
    assert fixup_result_version({"ips": []}, "0.4.0") == {"ips": [], "cniVersion": "0.4.0"}
    assert fixup_result_version({"cniVersion": "1.0.0"}, "0.4.0") == {"cniVersion": "1.0.0"}
    raw = {"cniVersion": ""}
    assert fixup_result_version(raw, "1.1.0")["cniVersion"] == "1.1.0"
    assert raw == {"cniVersion": ""}, "the caller's dict is left alone"


def test_parse_route_keeps_dst_as_written_and_masks_it_in_a_result_route() -> None:
    conf = parse_route({"dst": "10.1.1.1/24", "gw": "10.1.1.254", "mtu": 1400, "table": 0}, "r")
    assert conf.to_json() == {"dst": "10.1.1.1/24", "gw": "10.1.1.254", "mtu": 1400}
    route = conf.route()
    assert (route.dst, route.gw, route.mtu, route.table) == (
        ip_network("10.1.1.0/24"),
        ip_address("10.1.1.254"),
        1400,
        0,
    )
    assert parse_route({"dst": "fd00::/8", "gw": ""}, "r").to_json() == {"dst": "fd00::/8"}


@pytest.mark.parametrize(
    ("raw", "error", "message"),
    [
        ([], DecodingFailure, "r: a route must be an object"),
        ({}, InvalidConfig, "r.dst: invalid CIDR address"),
        ({"dst": "10.0.0.0"}, InvalidConfig, "r.dst: invalid CIDR address: 10.0.0.0"),
        ({"dst": "10.0.0.0/8", "gw": "nope"}, InvalidConfig, "r.gw: invalid IP address: nope"),
        ({"dst": "10.0.0.0/8", "gw": "fd00::1"}, InvalidConfig, "different families"),
        ({"dst": "10.0.0.0/8", "mtu": True}, DecodingFailure, "r.mtu must be an integer"),
        ({"dst": "10.0.0.0/8", "priority": "1"}, DecodingFailure, "r.priority must be an integer"),
    ],
)
def test_parse_route_errors(raw: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        parse_route(raw, "r")

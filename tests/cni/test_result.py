from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from podnet.cni import (
    ALL_VERSIONS,
    DNS,
    DecodingFailure,
    IncompatibleVersion,
    Interface,
    IPConfig,
    Result,
    Route,
)


def sample(dual_stack: bool = False) -> Result:
    ips = [
        IPConfig(
            address=ipaddress.ip_interface("10.244.1.5/24"),
            gateway=ipaddress.ip_address("10.244.1.1"),
            interface=2,
        )
    ]
    routes = [Route(dst=ipaddress.ip_network("0.0.0.0/0"), gw=ipaddress.ip_address("10.244.1.1"))]
    if dual_stack:
        ips.append(IPConfig(address=ipaddress.ip_interface("fd00::5/64"), interface=2))
        routes.append(Route(dst=ipaddress.ip_network("::/0")))
    return Result(
        interfaces=[
            Interface(name="cni0", mac="aa:bb:cc:dd:ee:01"),
            Interface(name="veth1", mac="aa:bb:cc:dd:ee:02"),
            Interface(name="eth0", mac="aa:bb:cc:dd:ee:03", sandbox="/run/netns/p", mtu=1450),
        ],
        ips=ips,
        routes=routes,
        dns=DNS(nameservers=["10.96.0.10"], search=["svc.cluster.local"]),
    )


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_round_trip_keeps_addresses(version: str) -> None:
    out = sample().to_json(version)
    assert out["cniVersion"] == version
    back = Result.from_json(out)
    assert [str(ip.address) for ip in back.ips] == ["10.244.1.5/24"]
    assert [str(ip.gateway) for ip in back.ips] == ["10.244.1.1"]
    assert [str(r.dst) for r in back.routes] == ["0.0.0.0/0"]
    assert back.dns.nameservers == ["10.96.0.10"]


@pytest.mark.parametrize(
    ("version", "expected_keys"),
    [
        ("0.1.0", {"cniVersion", "ip4", "dns"}),
        ("0.2.0", {"cniVersion", "ip4", "dns"}),
        ("0.3.0", {"cniVersion", "interfaces", "ips", "routes", "dns"}),
        ("0.3.1", {"cniVersion", "interfaces", "ips", "routes", "dns"}),
        ("0.4.0", {"cniVersion", "interfaces", "ips", "routes", "dns"}),
        ("1.0.0", {"cniVersion", "interfaces", "ips", "routes", "dns"}),
        ("1.1.0", {"cniVersion", "interfaces", "ips", "routes", "dns"}),
    ],
)
def test_shape_per_version(version: str, expected_keys: set[str]) -> None:
    assert set(sample().to_json(version)) == expected_keys


@pytest.mark.parametrize(
    ("version", "has_ip_version", "has_mtu"),
    [
        ("0.3.0", True, False),
        ("0.3.1", True, False),
        ("0.4.0", True, False),
        ("1.0.0", False, False),
        ("1.1.0", False, True),
    ],
)
def test_version_specific_fields(version: str, has_ip_version: bool, has_mtu: bool) -> None:
    out = sample().to_json(version)
    assert ("version" in out["ips"][0]) is has_ip_version
    assert ("mtu" in out["interfaces"][2]) is has_mtu
    if has_ip_version:
        assert out["ips"][0]["version"] == "4"


def test_020_form_splits_routes_by_family() -> None:
    out = sample(dual_stack=True).to_json("0.2.0")
    assert out["ip4"] == {
        "ip": "10.244.1.5/24",
        "gateway": "10.244.1.1",
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.244.1.1"}],
    }
    assert out["ip6"] == {"ip": "fd00::5/64", "routes": [{"dst": "::/0"}]}


def test_020_refuses_two_addresses_of_one_family() -> None:
    result = sample()
    result.ips.append(IPConfig(address=ipaddress.ip_interface("10.244.1.6/24")))
    with pytest.raises(IncompatibleVersion):
        result.to_json("0.2.0")


def test_up_conversion_from_020() -> None:
    back = Result.from_json(
        {"cniVersion": "0.2.0", "ip4": {"ip": "10.1.2.3/16", "routes": [{"dst": "10.0.0.0/8"}]}}
    )
    out = back.to_json("1.1.0")
    assert out["ips"] == [{"address": "10.1.2.3/16"}]
    assert out["routes"] == [{"dst": "10.0.0.0/8"}]


@pytest.mark.parametrize(
    "obj",
    [
        [],
        {"cniVersion": "0.4.0", "ips": [{"address": "10.0.0.1"}]},
        {"cniVersion": "0.4.0", "ips": [{"address": "nonsense/24"}]},
        {"cniVersion": "1.0.0", "ips": "x"},
        {"cniVersion": "1.0.0", "routes": [{"dst": "10.0.0.0/33"}]},
        {"cniVersion": "1.0.0", "dns": {"nameservers": "8.8.8.8"}},
        {"cniVersion": "1.0.0", "interfaces": [{"name": 3}]},
    ],
)
def test_decoding_errors(obj: Any) -> None:
    with pytest.raises(DecodingFailure):
        Result.from_json(obj)


def test_unknown_version() -> None:
    with pytest.raises(IncompatibleVersion):
        Result.from_json({"cniVersion": "7.0.0"})
    with pytest.raises(IncompatibleVersion):
        sample().to_json("7.0.0")

"""The bridge's config parsing and gateway computation (pure)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from podnet.cni import CNIError, IPConfig, Request, Result, Route
from podnet.plugins.main.bridge import parse_config
from podnet.plugins.main.bridge._config import owner_tag, validate_for_add
from podnet.plugins.main.bridge._gateway import apply_gateways


def request(cni_args: str = "", config: dict[str, Any] | None = None, **keys: Any) -> Request:
    base: dict[str, Any] = {"cniVersion": "1.0.0", "name": "cbr0", "type": "bridge"}
    base.update(config or {})
    base.update(keys)
    return Request(
        command="ADD", container_id="c1", netns="/x", ifname="eth0", args=cni_args, config=base
    )


def test_defaults() -> None:
    config = parse_config(request())
    assert config.bridge == "cni0"
    assert not config.is_gateway and not config.ip_masq and not config.layer3
    assert config.mtu == 0 and config.vlan == 0 and config.mac == ""


def test_default_gateway_implies_gateway() -> None:
    config = parse_config(request(isDefaultGateway=True))
    assert config.is_gateway and config.is_default_gateway


@pytest.mark.parametrize(
    ("args", "config", "mac"),
    [
        ("MAC=0a:58:0a:f4:01:05", {}, "0a:58:0a:f4:01:05"),
        ("IgnoreUnknown=1;K8S_POD_NAME=p;MAC=0A:58:0A:F4:01:05", {}, "0a:58:0a:f4:01:05"),
        (
            "MAC=0a:58:0a:f4:01:05",
            {"args": {"cni": {"mac": "0a:00:00:00:00:02"}}},
            "0a:00:00:00:00:02",
        ),
        (
            "MAC=0a:58:0a:f4:01:05",
            {
                "args": {"cni": {"mac": "0a:00:00:00:00:02"}},
                "runtimeConfig": {"mac": "0a:00:00:00:00:03"},
            },
            "0a:00:00:00:00:03",
        ),
    ],
)
def test_runtime_mac_last_source_wins(args: str, config: dict[str, Any], mac: str) -> None:
    assert parse_config(request(args, config)).mac == mac


@pytest.mark.parametrize(
    ("args", "config", "message"),
    [
        ("", {"vlan": 4095}, "invalid VLAN ID 4095"),
        ("", {"vlan": -1}, "invalid VLAN ID -1"),
        ("", {"mtu": "1450"}, "mtu must be a int"),
        ("", {"isGateway": "yes"}, "isGateway must be a boolean"),
        ("", {"bridge": 5}, "bridge must be a str"),
        ("K8S_POD_NAME=p", {}, 'can not set unknown field "K8S_POD_NAME"'),
        ("", {"ipam": []}, "ipam must be an object"),
        ("", {"vlanTrunk": [{"id": 5}]}, "vlanTrunk is not supported"),
        ("", {"ipMasqBackend": "iptables"}, "podnet masquerades with nftables"),
    ],
)
def test_config_errors(args: str, config: dict[str, Any], message: str) -> None:
    with pytest.raises(CNIError) as info:
        parse_config(request(args, config))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"hairpinMode": True, "promiscMode": True},
            "cannot set hairpin mode and promiscuous mode",
        ),
        (
            {"disableContainerInterface": True, "ipam": {"type": "host-local"}},
            "cannot use IPAM when DisableContainerInterface flag is set",
        ),
        ({"runtimeConfig": {"mac": "not-a-mac"}}, "invalid MAC address"),
    ],
)
def test_add_refuses_combinations(config: dict[str, Any], message: str) -> None:
    with pytest.raises(CNIError, match=message):
        validate_for_add(parse_config(request(config=config)))


def ipam_result(*addresses: str, routes: list[Route] | None = None) -> Result:
    return Result(
        ips=[IPConfig(address=ipaddress.ip_interface(a)) for a in addresses], routes=routes or []
    )


def test_gateways_default_to_first_address_and_add_default_routes() -> None:
    result = ipam_result("10.244.1.7/24", "fd00:1::7/64")
    bridge = apply_gateways(result, parse_config(request(isDefaultGateway=True)))
    assert [str(a) for a in bridge] == ["10.244.1.1/24", "fd00:1::1/64"]
    assert [ip.interface for ip in result.ips] == [2, 2]
    assert [(str(r.dst), str(r.gw)) for r in result.routes] == [
        ("0.0.0.0/0", "10.244.1.1"),
        ("::/0", "fd00:1::1"),
    ]


def test_ipam_gateway_and_default_route_are_kept() -> None:
    default = Route(dst=ipaddress.ip_network("0.0.0.0/0"), gw=ipaddress.ip_address("10.244.1.254"))
    result = ipam_result("10.244.1.7/24", routes=[default])
    result.ips[0].gateway = ipaddress.ip_address("10.244.1.254")
    bridge = apply_gateways(result, parse_config(request(isDefaultGateway=True)))
    assert [str(a) for a in bridge] == ["10.244.1.254/24"]
    assert result.routes == [default]


def test_no_gateway_without_is_gateway() -> None:
    result = ipam_result("10.244.1.7/24")
    assert apply_gateways(result, parse_config(request())) == []
    assert result.ips[0].gateway is None and result.routes == []


@pytest.mark.parametrize(
    ("cid", "expected"),
    [("abc", "abc/eth0"), ("x" * 200, None)],
)
def test_owner_tag(cid: str, expected: str | None) -> None:
    tag = owner_tag(cid, "eth0")
    assert len(tag) <= 128
    if expected is not None:
        assert tag == expected
    else:
        assert tag.startswith("sha256:") and tag != owner_tag(cid + "y", "eth0")

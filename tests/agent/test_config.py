from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

import pytest

from podnet.agent import BACKEND_TYPES, DEFAULT_BACKEND, BackendConfig, ConfigError, NetworkConfig


def test_flannel_default_net_conf() -> None:
    config = NetworkConfig.from_json('{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}')
    assert config.network == IPv4Network("10.244.0.0/16")
    assert config.backend == BackendConfig(type="vxlan", vni=1, port=8472, mtu=None)
    assert (config.enable_ipv4, config.enable_ipv6) == (True, False)


def test_keys_match_case_insensitively_like_go_json() -> None:
    config = NetworkConfig.from_dict(
        {
            "network": "10.244.0.0/16",
            "enableIPv4": True,
            "ipv6network": "fd00:10::/56",
            "backend": {
                "type": "vxlan",
                "vni": 4,
                "port": 4789,
                "mtu": 9000,
                "directRouting": True,
            },
        }
    )
    assert config.ipv6_network == IPv6Network("fd00:10::/56")
    assert config.backend == BackendConfig("vxlan", 4, 4789, 9000, direct_routing=True)


def test_absent_backend_is_vxlan() -> None:
    assert NetworkConfig.from_dict({"Network": "10.244.0.0/16"}).backend.type == "vxlan"
    assert DEFAULT_BACKEND == "vxlan"


def test_every_registered_backend_is_accepted_and_an_unknown_one_names_them_all() -> None:
    assert set(BACKEND_TYPES) == {"vxlan", "host-gw"}
    for backend_type in BACKEND_TYPES:
        config = NetworkConfig.from_dict(
            {"Network": "10.0.0.0/8", "Backend": {"Type": backend_type}}
        )
        assert config.backend.type == backend_type
    with pytest.raises(ConfigError) as info:
        NetworkConfig.from_dict({"Network": "10.0.0.0/8", "Backend": {"Type": "wireguard"}})
    assert all(
        repr(name) not in str(info.value) and name in str(info.value) for name in BACKEND_TYPES
    )


@pytest.mark.parametrize("key", ["EnableIPv6", "enableIPv6"])
def test_dual_stack_as_flannels_net_conf_writes_it(key: str) -> None:
    config = NetworkConfig.from_dict(
        {
            "Network": "10.244.0.0/16",
            key: True,
            "IPv6Network": "fd00:10:244::/56",
            "IPv6SubnetLen": 64,
            "SubnetLen": 24,
        }
    )
    assert (config.enable_ipv4, config.enable_ipv6) == (True, True)
    assert config.ipv6_network == IPv6Network("fd00:10:244::/56")
    assert (config.subnet_len, config.ipv6_subnet_len) == (24, 64)
    config = NetworkConfig.from_dict({"Network": "10.244.0.0/16", key: False})
    assert (config.enable_ipv4, config.enable_ipv6) == (True, False)


def test_ipv6_only_needs_no_ipv4_network() -> None:
    config = NetworkConfig.from_dict(
        {"EnableIPv4": False, "EnableIPv6": True, "IPv6Network": "fd00:10:244::/56"}
    )
    assert (config.enable_ipv4, config.enable_ipv6, config.network) == (False, True, None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Network"),
        ({"Network": "10.244.0.1/16"}, "Network"),
        ({"Network": "10.244.0.0/16", "EnableIPv6": True}, "IPv6Network"),
        ({"EnableIPv6": True, "IPv6Network": "fd00:10:244::1/56"}, "Network"),
        ({"EnableIPv4": False, "EnableIPv6": True, "IPv6Network": "10.0.0.0/8"}, "IPv6Network"),
        ({"EnableIPv4": False}, "both false"),
        ({"Network": "10.244.0.0/16", "IPv6SubnetLen": 129}, "IPv6SubnetLen"),
        ({"Network": "10.244.0.0/16", "SubnetLen": "24"}, "SubnetLen"),
        ({"Network": "10.244.0.0/16", "Backend": {"Type": "udp"}}, "Backend.Type"),
        ({"Network": "10.244.0.0/16", "Backend": {"VNI": -1}}, "VNI"),
        ({"Network": "10.244.0.0/16", "Backend": {"Port": "x"}}, "Port"),
        ({"Network": "10.244.0.0/16", "Backend": {"DirectRouting": "yes"}}, "DirectRouting"),
        ({"Network": "10.244.0.0/16", "EnableIPv4": 1}, "EnableIPv4"),
        ({"Network": "10.244.0.0/16", "Backend": []}, "Backend"),
        ([], "object"),
    ],
)
def test_bad_config_names_the_key(data, message) -> None:
    with pytest.raises(ConfigError, match=message):
        NetworkConfig.from_dict(data)


def test_not_json() -> None:
    with pytest.raises(ConfigError, match="not JSON"):
        NetworkConfig.from_json("{")

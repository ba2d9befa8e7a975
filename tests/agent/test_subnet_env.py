from __future__ import annotations

import os
from ipaddress import IPv4Network, IPv6Network

import pytest

from podnet.agent import NetworkConfig, render_subnet_env, write_subnet_env
from podnet.cni import TryAgainLater
from podnet.plugins.meta.flannel import SubnetEnv, load_subnet_env

V4 = NetworkConfig.from_dict({"Network": "10.244.0.0/16"})
DUAL = NetworkConfig.from_dict(
    {"Network": "10.244.0.0/16", "EnableIPv6": True, "IPv6Network": "fd00:10::/56"}
)


def test_flannels_keys_values_and_order() -> None:
    text = render_subnet_env(V4, subnet=IPv4Network("10.244.1.0/24"), mtu=1450, ip_masq=True)
    assert text == (
        "FLANNEL_NETWORK=10.244.0.0/16\n"
        "FLANNEL_SUBNET=10.244.1.1/24\n"
        "FLANNEL_MTU=1450\n"
        "FLANNEL_IPMASQ=true\n"
    )


def test_ipv6_keys_follow_the_ipv4_pair() -> None:
    text = render_subnet_env(
        DUAL,
        subnet=IPv4Network("10.244.3.0/24"),
        ipv6_subnet=IPv6Network("fd00:10:0:3::/64"),
        mtu=1500,
        ip_masq=False,
    )
    assert text.splitlines() == [
        "FLANNEL_NETWORK=10.244.0.0/16",
        "FLANNEL_SUBNET=10.244.3.1/24",
        "FLANNEL_IPV6_NETWORK=fd00:10::/56",
        "FLANNEL_IPV6_SUBNET=fd00:10:0:3::1/64",
        "FLANNEL_MTU=1500",
        "FLANNEL_IPMASQ=false",
    ]


def test_enabled_family_without_subnet_is_refused() -> None:
    with pytest.raises(ValueError):
        render_subnet_env(DUAL, subnet=IPv4Network("10.244.3.0/24"), mtu=1500, ip_masq=False)


def test_written_atomically_0644_and_read_back(tmp_path) -> None:
    path = str(tmp_path / "run" / "flannel" / "subnet.env")
    with pytest.raises(TryAgainLater):  # the plugin's answer while there is no file yet
        load_subnet_env(path)
    write_subnet_env(path, V4, subnet=IPv4Network("10.244.1.0/24"), mtu=1450, ip_masq=True)
    write_subnet_env(path, V4, subnet=IPv4Network("10.244.2.0/24"), mtu=1450, ip_masq=True)
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert os.listdir(os.path.dirname(path)) == ["subnet.env"], "no temp file is left behind"
    with open(path) as handle:
        assert "FLANNEL_SUBNET=10.244.2.1/24\n" in handle.read()
    assert load_subnet_env(path) == SubnetEnv(  # read back by the flannel plugin's parser
        networks=(IPv4Network("10.244.0.0/16"),),
        subnet=IPv4Network("10.244.2.0/24"),
        mtu=1450,
        ipmasq=True,
    )

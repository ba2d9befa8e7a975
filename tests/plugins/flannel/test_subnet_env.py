"""subnet.env as the reference flannel plugin reads it."""

from __future__ import annotations

import ipaddress

import pytest

from podnet.cni import CNIError
from podnet.plugins.meta.flannel import NOT_WRITTEN, load_subnet_env, parse_subnet_env

ALL_MISSING = (
    "is missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, "
    "FLANNEL_MTU, FLANNEL_IPMASQ"
)


def net(text: str):
    return ipaddress.ip_network(text)


def test_dual_stack_with_duplicates_and_crlf():
    env = parse_subnet_env(
        "FLANNEL_NETWORK=10.244.0.0/16,192.168.0.0/16,10.244.0.0/16\r\n"
        "FLANNEL_SUBNET=10.244.1.1/24\r\n"
        "FLANNEL_IPV6_NETWORK=fd00:10:244::/56\r\n"
        "FLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64\r\n"
        "FLANNEL_MTU=1450\r\nFLANNEL_IPMASQ=true\r\nFLANNEL_OTHER=whatever\r\n"
    )
    assert env.networks == (net("10.244.0.0/16"), net("192.168.0.0/16"))
    assert env.subnet == net("10.244.1.0/24")  # the lease's first address read as its network
    assert env.ipv6_networks == (net("fd00:10:244::/56"),)
    assert env.ipv6_subnet == net("fd00:10:244:1::/64")
    assert (env.mtu, env.ipmasq) == (1450, True)


@pytest.mark.parametrize(
    ("text", "ipmasq"),
    [
        ("FLANNEL_IPMASQ=true", True),
        ("FLANNEL_IPMASQ=false", False),
        ("FLANNEL_IPMASQ=True", False),
    ],
)
def test_ipmasq_is_true_only_for_true(text, ipmasq):
    env = parse_subnet_env(
        f"FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1\n{text}\n"
    )
    assert env.ipmasq is ipmasq
    assert env.subnet is None and env.networks == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo=bar", ALL_MISSING),
        ("", ALL_MISSING),
        (
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\n",
            "/x/subnet.env is missing FLANNEL_IPMASQ",
        ),
        ("FLANNEL_NETWORK=10.244.0.0\n", "FLANNEL_NETWORK: invalid CIDR address: 10.244.0.0"),
        ("FLANNEL_SUBNET=\n", "FLANNEL_SUBNET: invalid CIDR address: "),
        ("FLANNEL_SUBNET\n", "FLANNEL_SUBNET: invalid CIDR address"),
        ("FLANNEL_MTU=1450 \n", 'FLANNEL_MTU: parsing "1450 ": invalid syntax'),
        ("FLANNEL_MTU=-1\n", 'FLANNEL_MTU: parsing "-1": invalid syntax'),
        ("FLANNEL_MTU=4294967296\n", "invalid syntax"),
    ],
)
def test_malformed(text, message):
    with pytest.raises(ValueError) as info:
        parse_subnet_env(text, "/x/subnet.env")
    assert message in str(info.value)


def test_load_codes(tmp_path):
    with pytest.raises(CNIError) as missing:
        load_subnet_env(str(tmp_path / "subnet.env"))
    assert (missing.value.code, missing.value.msg) == (11, NOT_WRITTEN)
    assert str(tmp_path / "subnet.env") in missing.value.details
    (tmp_path / "subnet.env").write_text("foo=bar\n")
    with pytest.raises(CNIError) as malformed:
        load_subnet_env(str(tmp_path / "subnet.env"))
    assert malformed.value.code == 7
    assert malformed.value.msg.startswith("failed to load flannel 'subnet.env' file: ")
    with pytest.raises(CNIError) as directory:
        load_subnet_env(str(tmp_path))
    assert directory.value.code == 5

"""portmap's config as the reference reads it (no root needed)."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from podnet.cni import CNIError, Request, Result
from podnet.plugins.meta.portmap import PortMapping, parse_config
from podnet.plugins.meta.portmap._config import pod_addresses


def request(**keys: Any) -> Request:
    config = {"cniVersion": "1.0.0", "name": "cbr0", "type": "portmap", **keys}
    return Request(command="ADD", container_id="c1", ifname="eth0", config=config)


def mapped(*entries: dict[str, Any]) -> Request:
    return request(runtimeConfig={"portMappings": list(entries)})


def test_defaults_are_the_reference_s() -> None:
    config = parse_config(request())
    assert (config.snat, config.masq_all, config.mark_masq_bit) == (True, False, 13)
    assert config.mappings == ()
    assert config.conditions_v4 == config.conditions_v6 == ()


def test_mappings_are_normalised() -> None:
    config = parse_config(
        mapped(
            {"hostPort": 80, "containerPort": 8080},  # protocol defaults to tcp
            {"hostPort": 53, "containerPort": 53, "protocol": "UDP", "hostIP": "0.0.0.0"},
            {"hostPort": 53, "containerPort": 53, "protocol": "udp", "hostIP": "0.0.0.0"},
            {"hostPort": 9, "containerPort": 9, "protocol": "sctp", "hostIP": "192.0.2.1"},
        )
    )
    assert config.mappings == (
        PortMapping(9, 9, "sctp", ipaddress.ip_address("192.0.2.1"), 4),
        PortMapping(80, 8080, "tcp"),
        PortMapping(53, 53, "udp", None, 4),
    )
    unspecified = config.mappings[2]
    assert unspecified.applies_to(4) and not unspecified.applies_to(6)


@pytest.mark.parametrize(
    ("keys", "code", "words"),
    [
        (
            {"runtimeConfig": {"portMappings": [{"hostPort": 0, "containerPort": 1}]}},
            7,
            "Invalid host port number: 0",
        ),
        (
            {"runtimeConfig": {"portMappings": [{"hostPort": 1, "containerPort": 70000}]}},
            7,
            "above 65535",
        ),
        (
            {
                "runtimeConfig": {
                    "portMappings": [{"hostPort": 1, "containerPort": 1, "protocol": "icmp"}]
                }
            },
            7,
            "not one of tcp",
        ),
        (
            {
                "runtimeConfig": {
                    "portMappings": [{"hostPort": 1, "containerPort": 1, "hostIP": "nope"}]
                }
            },
            7,
            "invalid hostIP",
        ),
        (
            {"runtimeConfig": {"portMappings": [{"hostPort": "80", "containerPort": 1}]}},
            6,
            "hostPort",
        ),
        (
            {
                "runtimeConfig": {
                    "portMappings": [
                        {"hostPort": 1, "containerPort": 1},
                        {"hostPort": 1, "containerPort": 2},
                    ]
                }
            },
            7,
            "mapped twice",
        ),
        ({"markMasqBit": 32}, 7, "MasqMarkBit must be between 0 and 31"),
        ({"markMasqBit": True}, 6, "markMasqBit"),
        (
            {"externalSetMarkChain": "KUBE-MARK-MASQ"},
            7,
            "iptables-specific options [externalSetMarkChain]",
        ),
        ({"conditionsV6": ["!", "-d", "::1"]}, 7, "iptables-specific options [conditionsV6]"),
        ({"backend": "iptables"}, 7, "runs on nftables"),
        ({"backend": "ebpf"}, 7, "unrecognized backend"),
        ({"masqAll": 1}, 6, "masqAll must be a boolean"),
    ],
)
def test_bad_config_is_refused_with_its_code(keys: dict[str, Any], code: int, words: str) -> None:
    with pytest.raises(CNIError) as caught:
        parse_config(request(**keys))
    assert caught.value.code == code
    assert words in str(caught.value)


def test_keys_match_as_go_matches_them() -> None:
    """containerd (go-cni) marshals its PortMapping struct without JSON tags."""
    config = parse_config(
        mapped({"HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""})
    )
    assert config.mappings == (PortMapping(8080, 80, "tcp"),)


def test_the_pod_addresses_are_the_first_per_family_on_the_sandbox_interface() -> None:
    result = Result.from_json(
        json.loads(
            json.dumps(
                {
                    "cniVersion": "1.0.0",
                    "interfaces": [{"name": "cni0"}, {"name": "eth0", "sandbox": "/x"}],
                    "ips": [
                        {"address": "10.244.9.1/24", "interface": 0},  # the node's side
                        {"address": "10.244.1.5/24", "interface": 1},
                        {"address": "10.244.1.6/24", "interface": 1},
                        {"address": "fd00::5/64"},  # no interface named: taken
                    ],
                }
            )
        )
    )
    chosen = pod_addresses(request(), result)
    assert [str(a) for a in chosen] == ["10.244.1.5/24", "fd00::5/64"]
    assert pod_addresses(request(), None) == []

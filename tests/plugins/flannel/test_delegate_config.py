"""The delegate config flannel renders from its config and subnet.env, case by case as
the reference (flannel-io/cni-plugin flannel_linux_test.go and doCmdAdd)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from podnet.cni import CNIError, Request
from podnet.plugins.meta.flannel import (
    build_delegate,
    go_json,
    load_flannel_config,
    parse_subnet_env,
)

V4 = (
    "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\n"
    "FLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n"
)
V4_TWO_NETWORKS = V4.replace("10.1.0.0/16", "10.1.0.0/16,192.168.0.0/16")
V6 = (
    "FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\n"
    "FLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n"
)
DUAL = V4 + "FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\n"
NO_MASQ = V4.replace("FLANNEL_IPMASQ=true", "FLANNEL_IPMASQ=false")

BASE = {"name": "cni-flannel", "type": "flannel"}
IPAM_V4 = {
    "ranges": [[{"subnet": "10.1.17.0/24"}]],
    "routes": [{"dst": "10.1.0.0/16"}],
    "type": "host-local",
}
BRIDGE = {"ipMasq": False, "isGateway": True, "mtu": 1472, "name": "cni-flannel", "type": "bridge"}


def render(config: dict[str, Any], env: str) -> dict[str, Any]:
    request = Request(command="ADD", config=config, stdin=json.dumps(config).encode())
    return build_delegate(load_flannel_config(request), parse_subnet_env(env))


CASES = [
    ("ipv4", BASE, V4, {**BRIDGE, "ipam": IPAM_V4}),
    (
        "two-networks",
        BASE,
        V4_TWO_NETWORKS,
        {
            **BRIDGE,
            "ipam": {**IPAM_V4, "routes": [{"dst": "10.1.0.0/16"}, {"dst": "192.168.0.0/16"}]},
        },
    ),
    (
        "ipv6",
        BASE,
        V6,
        {
            **BRIDGE,
            "ipam": {
                "ranges": [[{"subnet": "fc00::/64"}]],
                "routes": [{"dst": "fc00::/48"}],
                "type": "host-local",
            },
        },
    ),
    (
        "dual-stack",
        BASE,
        DUAL,
        {
            **BRIDGE,
            "ipam": {
                "ranges": [[{"subnet": "10.1.17.0/24"}], [{"subnet": "fc00::/64"}]],
                "routes": [{"dst": "10.1.0.0/16"}, {"dst": "fc00::/48"}],
                "type": "host-local",
            },
        },
    ),
    ("agent-does-not-masquerade", BASE, NO_MASQ, {**BRIDGE, "ipMasq": True, "ipam": IPAM_V4}),
    (
        "input-ipam-passes-through",
        {
            **BASE,
            "ipam": {
                "type": "my-ipam",
                "unknown-param": "unknown-value",
                "dataDir": "/run/ipam",
                "routes": [
                    {"dst": "10.96.0.0/12"},
                    {"dst": "192.168.244.0/24", "gw": "10.1.17.20", "extra": 1},
                ],
            },
        },
        V4,
        {
            **BRIDGE,
            "ipam": {
                "type": "my-ipam",
                "unknown-param": "unknown-value",
                "dataDir": "/run/ipam",
                "ranges": [[{"subnet": "10.1.17.0/24"}]],
                "routes": [
                    {"dst": "10.96.0.0/12"},
                    {"dst": "192.168.244.0/24", "gw": "10.1.17.20"},
                    {"dst": "10.1.0.0/16"},
                ],
            },
        },
    ),
    (
        "input-ipam-ranges-are-replaced",
        {**BASE, "ipam": {"ranges": [[{"subnet": "10.9.0.0/24"}]]}},
        V4,
        {**BRIDGE, "ipam": IPAM_V4},
    ),
    (
        "delegate-keys-win",
        {
            **BASE,
            "delegate": {"ipMasq": True, "mtu": 9000, "isGateway": False, "hairpinMode": True},
        },
        V4,
        {
            **BRIDGE,
            "ipMasq": True,
            "mtu": 9000,
            "isGateway": False,
            "hairpinMode": True,
            "ipam": IPAM_V4,
        },
    ),
    (
        "not-bridge-has-no-isGateway",
        {**BASE, "delegate": {"type": "ipvlan", "master": "eth0"}},
        V4,
        {
            "ipMasq": False,
            "mtu": 1472,
            "name": "cni-flannel",
            "type": "ipvlan",
            "master": "eth0",
            "ipam": IPAM_V4,
        },
    ),
    (
        "cni-version-and-runtime-config-copied",
        {**BASE, "cniVersion": "0.3.1", "runtimeConfig": {"portMappings": []}, "args": {"x": 1}},
        V4,
        {**BRIDGE, "cniVersion": "0.3.1", "runtimeConfig": {"portMappings": []}, "ipam": IPAM_V4},
    ),
]


@pytest.mark.parametrize(("config", "env", "want"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_rendering(config, env, want):
    assert render(config, env) == want


@pytest.mark.parametrize(
    ("delegate", "message"),
    [
        (
            {"name": "x"},
            "'delegate' dictionary must not have 'name' field, it'll be set by flannel",
        ),
        ({"ipam": {}}, "'delegate' dictionary must not have 'ipam' field, it'll be set by flannel"),
        ({"type": 7}, "'delegate' dictionary, if present, must have (string) 'type' field"),
    ],
)
def test_forbidden_delegate_keys(delegate, message):
    with pytest.raises(CNIError) as info:
        render({**BASE, "delegate": delegate}, V4)
    assert (info.value.code, info.value.msg) == (7, message)


@pytest.mark.parametrize(
    ("config", "code"),
    [
        ({**BASE, "delegate": "bridge"}, 6),
        ({**BASE, "ipam": []}, 6),
        ({**BASE, "subnetFile": 1}, 6),
        ({**BASE, "ipam": {"routes": {"dst": "x"}}}, 6),
        ({**BASE, "ipam": {"routes": [{"dst": "default"}]}}, 7),
        ({**BASE, "ipam": {"routes": [{"dst": "10.0.0.0/8", "gw": "gw"}]}}, 7),
    ],
)
def test_bad_config(config, code):
    with pytest.raises(CNIError) as info:
        render(config, V4)
    assert info.value.code == code


def test_the_input_config_is_not_changed():
    config = {**BASE, "delegate": {"hairpinMode": True}, "ipam": {"routes": []}}
    before = json.dumps(config)
    render(config, V4)
    assert json.dumps(config) == before


def test_encoded_as_go_encodes_a_map():
    assert go_json(render(BASE, V4)) == (
        b'{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],'
        b'"routes":[{"dst":"10.1.0.0/16"}],"type":"host-local"},"isGateway":true,'
        b'"mtu":1472,"name":"cni-flannel","type":"bridge"}'
    )
    assert (
        go_json({"b": "<&>", "a": "é\u2028"})
        == '{"a":"é\\u2028","b":"\\u003c\\u0026\\u003e"}'.encode()
    )

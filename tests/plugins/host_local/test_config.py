"""host-local's config reader in-process: where range sets and requested addresses come
from, and in which order."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from podnet.cni import CNIError, Request
from podnet.plugins.ipam.host_local import DEFAULT_DATA_DIR, load_config
from podnet.plugins.ipam.host_local._dns import parse_resolv_conf


def request(config: dict[str, Any], args: str = "") -> Request:
    return Request(
        command="ADD",
        container_id="c",
        ifname="eth0",
        args=args,
        config=config,
        stdin=json.dumps(config).encode(),
    )


def base(**ipam: Any) -> dict[str, Any]:
    return {"cniVersion": "1.0.0", "name": "n", "ipam": {"type": "host-local", **ipam}}


def test_defaults():
    conf = load_config(request(base(subnet="10.1.2.0/24")))
    assert conf.data_dir == DEFAULT_DATA_DIR
    assert [str(s) for s in conf.range_sets] == ["10.1.2.1-10.1.2.254"]
    assert conf.requested == (None,)
    assert conf.routes == ()


def test_set_order_ip_ranges_then_legacy_then_ranges():
    config = base(subnet="10.2.0.0/24", ranges=[[{"subnet": "10.3.0.0/24"}]])
    config["runtimeConfig"] = {"ipRanges": [[{"subnet": "10.1.0.0/24"}]]}
    conf = load_config(request(config))
    assert [str(s.ranges[0].subnet) for s in conf.range_sets] == [
        "10.1.0.0/24",
        "10.2.0.0/24",
        "10.3.0.0/24",
    ]


def test_requested_addresses_go_to_their_sets():
    config = base(ranges=[[{"subnet": "10.1.2.0/24"}], [{"subnet": "fd00::/120"}]])
    config["args"] = {"cni": {"ips": ["fd00::9"]}}
    conf = load_config(request(config, args="IP=10.1.2.9/24"))
    assert conf.requested == (ipaddress.ip_address("10.1.2.9"), ipaddress.ip_address("fd00::9"))


@pytest.mark.parametrize(
    ("config", "args", "message"),
    [
        (base(), "", "no IP ranges specified"),
        (
            base(ranges=[[{"subnet": "10.1.2.0/31"}]]),
            "",
            "invalid range set 0: Network 10.1.2.0/31",
        ),
        (
            base(subnet="10.1.2.0/24", ranges=[[{"subnet": "10.1.2.0/24"}]]),
            "",
            "range set 0 overlaps with 1",
        ),
        (
            base(subnet="10.1.2.0/24"),
            "IP=10.9.9.9",
            "failed to allocate all requested IPs: 10.9.9.9",
        ),
        (base(subnet="10.1.2.0/24"), "IP=10.1.2.1", "requested ip 10.1.2.1 is subnet's gateway"),
        (base(subnet="10.1.2.0/24"), "FOO=1;BAR=2", 'ARGS: unknown args ["FOO=1" "BAR=2"]'),
        (base(subnet="10.1.2.0/24"), "IP=x", 'ARGS: error parsing value of pair "IP=x"'),
    ],
)
def test_refused(config, args, message):
    with pytest.raises(CNIError) as info:
        load_config(request(config, args))
    assert message in info.value.msg


def test_resolv_conf_parsing():
    dns = parse_resolv_conf(
        "; c\n# c\nnameserver 1.1.1.1\nnameserver 8.8.8.8 extra\nnameserver\n"
        "search a b\nsearch c\ndomain d\noptions ndots:2 edns0\n"
    )
    assert dns.nameservers == ["1.1.1.1", "8.8.8.8"]
    assert (dns.domain, dns.search, dns.options) == ("d", ["a", "b", "c"], ["ndots:2", "edns0"])

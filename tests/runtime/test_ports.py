"""`--port` as the runtime reads it, into CNI's portMappings entries."""

from __future__ import annotations

import pytest

from podnet.runtime import PortSpecError, parse_port_mapping, port_capability_args


@pytest.mark.parametrize(
    ("spec", "entry"),
    [
        ("8080:80", {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}),
        ("53:5353/UDP", {"hostPort": 53, "containerPort": 5353, "protocol": "udp"}),
        (
            "192.0.2.1:9:99/sctp",
            {"hostPort": 9, "containerPort": 99, "protocol": "sctp", "hostIP": "192.0.2.1"},
        ),
        (
            "[fd00::0001]:443:8443",
            {"hostPort": 443, "containerPort": 8443, "protocol": "tcp", "hostIP": "fd00::1"},
        ),
    ],
)
def test_port_specs(spec: str, entry: dict[str, object]) -> None:
    assert parse_port_mapping(spec) == entry


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("8080", "expected [HOSTIP:]HOST:CONTAINER[/PROTO]"),
        ("0:80", "host port '0' is not a port number"),
        ("80:70000", "container port '70000' is not a port number"),
        ("80:80/icmp", "protocol 'icmp'"),
        ("nope:80:80", "'nope' is not an IP address"),
        ("[fd00::1:80:80", "expected [HOSTIP]:HOST:CONTAINER"),
        ("a:b:c:d", "expected"),
    ],
)
def test_bad_port_specs_name_the_problem(spec: str, words: str) -> None:
    with pytest.raises(PortSpecError) as caught:
        parse_port_mapping(spec)
    assert words in str(caught.value)


def test_no_ports_no_capability_args() -> None:
    assert port_capability_args([]) == {}
    assert port_capability_args([{"hostPort": 1}]) == {"portMappings": [{"hostPort": 1}]}

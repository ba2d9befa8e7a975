"""hostPorts as a runtime hands them to CNI: the `portMappings` capability argument
(CONVENTIONS.md), one {hostPort, containerPort, protocol[, hostIP]} per port, written on
a command line as `[HOSTIP:]HOST:CONTAINER[/PROTO]` (docker's -p order)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

PORT_MAPPINGS = "portMappings"
_PROTOCOLS = ("tcp", "udp", "sctp")


class PortSpecError(ValueError):
    """A port mapping written wrong; the message names the problem."""


def _port(text: str, what: str, spec: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise PortSpecError(f"{spec!r}: {what} {text!r} is not a port number (1-65535)")
    return int(text)


def parse_port_mapping(spec: str) -> dict[str, Any]:
    """`8080:80/tcp`, `53:5353/udp`, `192.0.2.1:8080:80`, `[fd00::1]:8080:80` -> one
    portMappings entry (protocol tcp when not given)."""
    rest, _, protocol = spec.partition("/")
    protocol = protocol.lower() or "tcp"
    if protocol not in _PROTOCOLS:
        raise PortSpecError(f"{spec!r}: protocol {protocol!r} is not one of tcp, udp, sctp")
    host_ip = ""
    if rest.startswith("["):
        host_ip, bracket, rest = rest[1:].partition("]:")
        if not bracket:
            raise PortSpecError(f"{spec!r}: expected [HOSTIP]:HOST:CONTAINER")
    else:
        parts = rest.split(":")
        if len(parts) == 3:
            host_ip, rest = parts[0], ":".join(parts[1:])
        elif len(parts) != 2:
            raise PortSpecError(f"{spec!r}: expected [HOSTIP:]HOST:CONTAINER[/PROTO]")
    host, _, container = rest.partition(":")
    entry: dict[str, Any] = {
        "hostPort": _port(host, "host port", spec),
        "containerPort": _port(container, "container port", spec),
        "protocol": protocol,
    }
    if host_ip:
        try:
            entry["hostIP"] = str(ipaddress.ip_address(host_ip))
        except ValueError:
            raise PortSpecError(f"{spec!r}: {host_ip!r} is not an IP address") from None
    return entry


def port_capability_args(mappings: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The capability args for these mappings (none at all without any, as containerd)."""
    return {PORT_MAPPINGS: [dict(m) for m in mappings]} if mappings else {}

"""`podnet agent run`'s interface flags, and flanneld's FLANNELD_* variables for those not
given (the choice itself is tested in tests/agent/test_iface.py)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from podnet.agent import InterfaceError, InterfaceOptions, interface_options
from podnet.cli._agent import add_interface_arguments, interface_from


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_interface_arguments(parser)
    return parser.parse_args(argv)


def test_flags_not_given_come_from_flanneld_variables() -> None:
    environ = {"FLANNELD_IFACE": "eth1", "FLANNELD_PUBLIC_IP": "192.0.2.138"}
    from_env = interface_from(parse([]), environ)
    assert from_env == InterfaceOptions(ifaces=("eth1",), public_ip="192.0.2.138")
    flags = interface_from(parse(["--iface", "eth0", "--iface", "10.0.0.1"]), environ)
    assert flags.ifaces == ("eth0", "10.0.0.1") and flags.public_ip == "192.0.2.138"
    regex = interface_from(
        parse([]), {"FLANNELD_IFACE_REGEX": "^eth", "FLANNELD_IFACE_CAN_REACH": "192.0.2.1"}
    )
    assert regex == InterfaceOptions(regexes=("^eth",), can_reach="192.0.2.1")


def test_a_public_ip_that_is_no_address_is_refused_up_front() -> None:
    with pytest.raises(InterfaceError, match=r"--public-ip '10\.0\.0' is not an IPv4 address"):
        interface_options(public_ip="10.0.0")
    with pytest.raises(InterfaceError, match="--public-ipv6 '192.0.2.1' is not an IPv6 address"):
        interface_options(public_ipv6="192.0.2.1")


def test_help_names_every_default() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "podnet.cli.main", "agent", "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    text = " ".join(done.stdout.split())
    for flag in ("iface", "iface-regex", "iface-can-reach", "public-ip", "public-ipv6"):
        assert f"env FLANNELD_{flag.upper().replace('-', '_')})" in text
    assert "default: the default route's interface, as flanneld" in text


def test_a_bad_public_ip_is_one_line_and_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "podnet.cli.main", "agent", "run", "--node-name", "n1",
         "--public-ip", "nope"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == "podnet agent: --public-ip 'nope' is not an IPv4 address\n"

"""Malformed configs and environments: each answered with the right CNI code, exit 1,
a valid JSON error on stdout, and the data dir exactly as it was."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.plugins.host_local._helpers import environ, netconf, run, snapshot

Conf = dict[str, Any]


def ipam(**changes: Any) -> Callable[[Conf], Conf]:
    def edit(conf: Conf) -> Conf:
        conf["ipam"].update(changes)
        return conf

    return edit


def top(**changes: Any) -> Callable[[Conf], Conf]:
    def edit(conf: Conf) -> Conf:
        conf.update(changes)
        return conf

    return edit


def drop(key: str) -> Callable[[Conf], Conf]:
    def edit(conf: Conf) -> Conf:
        conf.pop(key)
        return conf

    return edit


def ranges(*sets: Any) -> Callable[[Conf], Conf]:
    return ipam(ranges=list(sets))


def same(conf: Conf) -> Conf:
    return conf


V4 = {"subnet": "10.1.2.0/24"}

# (id, command, config edit or raw stdin, environment changes, expected code)
CASES: list[tuple[str, str, Any, dict[str, str], int]] = [
    ("stdin-not-json", "ADD", b"{not json", {}, 6),
    ("stdin-empty", "ADD", b"", {}, 6),
    ("stdin-array", "ADD", b"[1, 2]", {}, 6),
    ("stdin-string", "ADD", b'"net1"', {}, 6),
    ("no-name", "ADD", drop("name"), {}, 7),
    ("bad-name", "ADD", top(name="net/../etc"), {}, 7),
    ("version-garbage", "ADD", top(cniVersion="one"), {}, 6),
    ("version-from-future", "ADD", top(cniVersion="9.9.9"), {}, 1),
    ("no-ipam", "ADD", drop("ipam"), {}, 7),
    ("ipam-not-object", "ADD", top(ipam="host-local"), {}, 6),
    ("no-ranges", "ADD", ipam(ranges=[]), {}, 7),
    ("ranges-not-list", "ADD", ipam(ranges={"subnet": "10.1.2.0/24"}), {}, 6),
    ("range-set-not-list", "ADD", ranges(V4), {}, 6),
    ("range-not-object", "ADD", ranges(["10.1.2.0/24"]), {}, 6),
    ("range-without-subnet", "ADD", ranges([{"rangeStart": "10.1.2.5"}]), {}, 7),
    ("subnet-not-string", "ADD", ranges([{"subnet": 24}]), {}, 6),
    ("subnet-no-prefix", "ADD", ranges([{"subnet": "10.1.2.0"}]), {}, 7),
    ("subnet-garbage", "ADD", ranges([{"subnet": "ten/24"}]), {}, 7),
    ("subnet-host-bits", "ADD", ranges([{"subnet": "10.1.2.7/24"}]), {}, 7),
    ("subnet-slash-31", "ADD", ranges([{"subnet": "10.1.2.0/31"}]), {}, 7),
    ("subnet-slash-32", "ADD", ranges([{"subnet": "10.1.2.0/32"}]), {}, 7),
    ("subnet-v6-slash-127", "ADD", ranges([{"subnet": "fd00::/127"}]), {}, 7),
    ("start-outside", "ADD", ranges([{**V4, "rangeStart": "10.1.3.1"}]), {}, 7),
    ("end-outside", "ADD", ranges([{**V4, "rangeEnd": "10.1.3.1"}]), {}, 7),
    ("start-after-end", "ADD", ranges([{**V4, "rangeStart": ".9", "rangeEnd": ".5"}]), {}, 7),
    ("start-garbage", "ADD", ranges([{**V4, "rangeStart": "10.1.2"}]), {}, 7),
    ("gateway-garbage", "ADD", ranges([{**V4, "gateway": "gw"}]), {}, 7),
    ("mixed-families", "ADD", ranges([V4, {"subnet": "fd00::/120"}]), {}, 7),
    ("overlap-in-set", "ADD", ranges([V4, {"subnet": "10.1.0.0/16"}]), {}, 7),
    ("overlap-between-sets", "ADD", ranges([V4], [{"subnet": "10.1.2.0/25"}]), {}, 7),
    ("legacy-overlaps-ranges", "ADD", ipam(subnet="10.1.0.0/16"), {}, 7),
    (
        "two-v4-at-0.2.0",
        "ADD",
        lambda c: ranges([V4], [{"subnet": "10.1.3.0/24"}])(top(cniVersion="0.2.0")(c)),
        {},
        1,
    ),
    ("data-dir-not-string", "ADD", ipam(dataDir=["/tmp"]), {}, 6),
    ("routes-not-list", "ADD", ipam(routes={"dst": "0.0.0.0/0"}), {}, 6),
    ("route-dst-garbage", "ADD", ipam(routes=[{"dst": "default"}]), {}, 7),
    ("route-gw-garbage", "ADD", ipam(routes=[{"dst": "0.0.0.0/0", "gw": "x"}]), {}, 7),
    ("route-gw-other-family", "ADD", ipam(routes=[{"dst": "0.0.0.0/0", "gw": "fd00::1"}]), {}, 7),
    ("resolv-conf-missing", "ADD", ipam(resolvConf="/nonexistent/resolv.conf"), {}, 5),
    ("args-ip-garbage", "ADD", same, {"CNI_ARGS": "IP=10.1.2"}, 4),
    ("args-unknown-key", "ADD", same, {"CNI_ARGS": "K8S_POD_NAME=web"}, 4),
    ("args-no-equals", "ADD", same, {"CNI_ARGS": "IgnoreUnknown"}, 4),
    ("args-bad-bool", "ADD", same, {"CNI_ARGS": "IgnoreUnknown=maybe;IP=10.1.2.9"}, 4),
    ("requested-outside", "ADD", top(args={"cni": {"ips": ["10.9.9.9"]}}), {}, 7),
    ("requested-gateway", "ADD", top(runtimeConfig={"ips": ["10.1.2.1/24"]}), {}, 7),
    (
        "requested-two-in-one-set",
        "ADD",
        top(runtimeConfig={"ips": ["10.1.2.8", "10.1.2.9"]}),
        {},
        7,
    ),
    ("runtime-ips-not-list", "ADD", top(runtimeConfig={"ips": "10.1.2.9"}), {}, 6),
    ("args-cni-ips-garbage", "ADD", top(args={"cni": {"ips": ["ten"]}}), {}, 7),
    ("ip-ranges-garbage", "ADD", top(runtimeConfig={"ipRanges": [[{"subnet": "x"}]]}), {}, 7),
    ("requested-taken", "ADD", same, {"CNI_ARGS": "IP=10.1.2.2"}, 999),
    ("duplicate-attachment", "ADD", same, {"CNI_CONTAINERID": "existing"}, 999),
    ("no-container-id", "ADD", same, {"CNI_CONTAINERID": ""}, 4),
    ("bad-container-id", "ADD", same, {"CNI_CONTAINERID": "-rm -rf"}, 4),
    ("no-ifname", "ADD", same, {"CNI_IFNAME": ""}, 4),
    ("ifname-too-long", "ADD", same, {"CNI_IFNAME": "eth0123456789012"}, 4),
    ("ifname-slash", "ADD", same, {"CNI_IFNAME": "eth/0"}, 4),
    ("no-netns", "ADD", same, {"CNI_NETNS": ""}, 4),
    ("no-path", "ADD", same, {"CNI_PATH": ""}, 4),
    ("unknown-command", "FROB", same, {}, 4),
    ("del-no-ipam", "DEL", drop("ipam"), {}, 7),
    ("del-no-container-id", "DEL", same, {"CNI_CONTAINERID": ""}, 4),
    ("check-at-0.3.1", "CHECK", top(cniVersion="0.3.1"), {}, 1),
    ("check-bad-prev-result", "CHECK", top(prevResult={"cniVersion": "1.0.0", "ips": 7}), {}, 6),
    ("gc-at-1.0.0", "GC", same, {}, 1),
    ("gc-without-attachments", "GC", top(cniVersion="1.1.0"), {}, 7),
    (
        "gc-attachments-not-list",
        "GC",
        top(cniVersion="1.1.0", **{"cni.dev/valid-attachments": {"containerID": "x"}}),
        {},
        6,
    ),
    ("status-at-0.4.0", "STATUS", top(cniVersion="0.4.0"), {}, 1),
]


@pytest.fixture
def populated(ours, tmp_path):
    """A data dir that already holds one pod, to see that nothing changes."""
    conf = netconf(tmp_path)
    assert run(ours, "ADD", conf, cid="existing").code == 0
    return conf


def test_table_is_large_enough():
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("command", "stdin", "env_changes", "code"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input(ours, tmp_path, populated, command, stdin, env_changes, code):
    before = snapshot(tmp_path)
    if isinstance(stdin, bytes):
        data = stdin
    else:
        data = json.dumps(stdin(copy.deepcopy(populated))).encode()
    env = environ(command, cid="pod-x")
    env.update(env_changes)
    env = {k: v for k, v in env.items() if v != ""}
    out = run(ours, command, data, env=env)
    assert out.code == 1
    error = out.json
    assert set(error) == {"cniVersion", "code", "msg", "details"}
    assert error["code"] == code, error
    assert error["msg"]
    assert snapshot(tmp_path) == before

from __future__ import annotations

import ipaddress
import json
import threading
import uuid

import pytest

from podnet.cni import CNIError, IPConfig, Plugin, Request, Result, TryAgainLater, dispatch
from podnet.netlink import create_netns, delete_netns, run_in_netns

CALLS: list[str] = []


def add(request: Request) -> Result:
    CALLS.append("ADD")
    if request.config.get("fail") == "cni":
        raise TryAgainLater("busy", "come back")
    if request.config.get("fail") == "bug":
        raise KeyError("boom\nsecond line")
    return Result(ips=[IPConfig(address=ipaddress.ip_interface("10.0.0.2/24"))])


def delete(request: Request) -> None:
    CALLS.append("DEL")


def check(request: Request) -> None:
    CALLS.append("CHECK")


PLUGIN = Plugin(name="test", add=add, delete=delete, check=check)


def conf(version: str, **extra: object) -> bytes:
    return json.dumps({"cniVersion": version, "name": "net", "type": "test", **extra}).encode()


def environ(command: str) -> dict[str, str]:
    return {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": "c1",
        "CNI_NETNS": "/run/netns/does-not-matter",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/nowhere",
    }


@pytest.fixture(autouse=True)
def reset_calls() -> None:
    CALLS.clear()


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_add_prints_result_in_config_version(version: str) -> None:
    code, out = dispatch(PLUGIN, environ("ADD"), conf(version))
    assert code == 0
    assert json.loads(out)["cniVersion"] == version


@pytest.mark.parametrize(
    ("command", "version", "code", "called"),
    [
        ("CHECK", "0.3.1", 1, []),
        ("CHECK", "0.4.0", 0, ["CHECK"]),
        ("GC", "1.0.0", 1, []),
        ("GC", "1.1.0", 0, []),  # a verb the plugin leaves out succeeds, as libcni's skel
        ("STATUS", "0.4.0", 1, []),
        ("STATUS", "1.1.0", 0, []),
        ("DEL", "0.1.0", 0, ["DEL"]),
    ],
)
def test_version_gates(command: str, version: str, code: int, called: list[str]) -> None:
    env = environ(command)
    rc, out = dispatch(PLUGIN, env, conf(version))
    assert rc == (0 if code == 0 else 1)
    if code:
        assert json.loads(out)["code"] == code
    assert called == CALLS


def test_plugin_error_is_json_with_code() -> None:
    code, out = dispatch(PLUGIN, environ("ADD"), conf("1.0.0", fail="cni"))
    assert code == 1
    assert json.loads(out) == {
        "cniVersion": "1.0.0",
        "code": 11,
        "msg": "busy",
        "details": "come back",
    }


def test_bug_becomes_999_one_line() -> None:
    code, out = dispatch(PLUGIN, environ("ADD"), conf("1.0.0", fail="bug"))
    error = json.loads(out)
    assert code == 1
    assert error["code"] == 999
    assert "\n" not in error["msg"] and "KeyError" in error["msg"]


def test_version_command() -> None:
    code, out = dispatch(PLUGIN, {"CNI_COMMAND": "VERSION"}, b"")
    assert code == 0
    info = json.loads(out)
    assert info["cniVersion"] == "1.1.0"
    assert "0.3.1" in info["supportedVersions"]


def test_unsupported_config_version() -> None:
    narrow = Plugin(name="narrow", add=add, delete=delete, versions=("1.0.0",))
    code, out = dispatch(narrow, environ("ADD"), conf("0.4.0"))
    assert code == 1
    assert json.loads(out)["code"] == 1


def test_error_round_trip() -> None:
    error = CNIError.from_json({"code": 7, "msg": "bad", "details": "d"})
    assert type(error).__name__ == "InvalidConfig"
    assert error.to_json("1.1.0")["code"] == 7


@pytest.mark.parametrize(
    "stdin",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"cniVersion": "1.0.0", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        '{"cniVersion": "1.0.\u00b2", "name": "net", "type": "test"}'.encode(),
        b"\xff",
    ],
    ids=["deep", "deep-inside", "superscript-version", "not-utf8"],
)
def test_every_stdin_parse_failure_is_code_6(
    stdin: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever makes stdin unreadable, the answer is one CNI error (code 6), never a
    traceback or code 999 (issue 13)."""
    code, out = dispatch(PLUGIN, environ("ADD"), stdin)
    assert code == 1
    error = json.loads(out)
    assert error["code"] == 6, error
    assert error["msg"].startswith(("error unmarshall network config", "invalid version"))
    assert "\n" not in error["msg"]
    assert CALLS == []
    assert capsys.readouterr() == ("", "")


def test_add_refuses_the_namespace_the_plugin_runs_in() -> None:
    own = {**environ("ADD"), "CNI_NETNS": "/proc/thread-self/ns/net"}
    code, out = dispatch(PLUGIN, own, conf("1.0.0"))
    assert code == 1
    error = json.loads(out)
    assert error["code"] == 8  # the reference's ErrInvalidNetNS
    assert error["msg"] == "plugin's netns and netns from CNI_NETNS should not be the same"
    assert CALLS == []
    override = {**own, "CNI_NETNS_OVERRIDE": "1"}
    assert dispatch(PLUGIN, override, conf("1.0.0"))[0] == 0


@pytest.mark.root
def test_own_namespace_is_the_calling_threads() -> None:
    """A thread in the node runs a plugin for a pod while another thread of the process
    (here the main one) is inside that pod's namespace: not the plugin's own."""
    pod = f"/var/run/netns/pn-skel-pod-{uuid.uuid4().hex[:8]}"
    create_netns(pod)
    try:
        go = threading.Event()
        outcome: list[tuple[int, bytes]] = []

        def plugin_thread() -> None:  # started here, so in this test's namespace
            go.wait(10)
            outcome.append(dispatch(PLUGIN, {**environ("ADD"), "CNI_NETNS": pod}, conf("1.0.0")))

        thread = threading.Thread(target=plugin_thread)
        thread.start()

        def inside_the_pod() -> None:
            go.set()
            thread.join(10)

        run_in_netns(pod, inside_the_pod)
        assert outcome and outcome[0][0] == 0, outcome
    finally:
        delete_netns(pod)

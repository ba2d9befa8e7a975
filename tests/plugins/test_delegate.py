"""Delegation: through the host's Exec; by default a plugin that is not podnet's is found
in CNI_PATH and exec'd, and podnet's own run in this process."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from podnet.cni import LOCKED_ENV, CNIError, Host, Plugin, Request, find_in_path
from podnet.plugins._delegate import PodnetExec, delegate, podnet_type_of
from podnet.plugins._install import install_executables

FAKE_PLUGIN = """#!{python} -I
import json, os, sys
conf = json.load(sys.stdin)
with open({record!r}, "a") as f:
    f.write(json.dumps({{"cmd": os.environ["CNI_COMMAND"], "conf": conf}}) + "\\n")
mode = conf.get("mode")
if mode == "error":
    print(json.dumps({{"code": 11, "msg": "later", "details": "d"}})); sys.exit(1)
if mode == "stderr":
    sys.stderr.write("crashed hard"); sys.exit(2)
if mode == "garbage":
    print("not json"); sys.exit(1)
if os.environ["CNI_COMMAND"] == "ADD":
    print(json.dumps({{"ips": [{{"address": "10.1.1.9/24"}}]}}))
"""


@pytest.fixture
def fake_bin(tmp_path: Path) -> tuple[Path, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "calls.jsonl"
    exe = bin_dir / "fake"
    exe.write_text(FAKE_PLUGIN.format(python=sys.executable, record=str(record)))
    exe.chmod(0o755)
    return bin_dir, record


def request(bin_dir: Path) -> Request:
    return Request(
        command="ADD",
        container_id="c1",
        netns="/run/netns/x",
        ifname="eth0",
        path=("/nonexistent", str(bin_dir)),
    )


def test_exec_delegate_add_and_del(fake_bin: tuple[Path, Path]) -> None:
    bin_dir, record = fake_bin
    config = {"cniVersion": "1.0.0", "name": "n", "type": "fake"}
    result = delegate("ADD", "fake", config, request(bin_dir))
    assert result is not None
    # no cniVersion in the plugin's output: the config's version is assumed, as libcni does
    assert result.cni_version == "1.0.0"
    assert [str(ip.address) for ip in result.ips] == ["10.1.1.9/24"]
    assert delegate("DEL", "fake", config, request(bin_dir)) is None
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert [c["cmd"] for c in calls] == ["ADD", "DEL"]
    assert calls[0]["conf"] == config


@pytest.mark.parametrize(
    ("mode", "code", "text"),
    [("error", 11, "later"), ("stderr", 999, "crashed hard"), ("garbage", 6, "not json")],
)
def test_exec_delegate_errors(fake_bin: tuple[Path, Path], mode: str, code: int, text: str) -> None:
    bin_dir, _ = fake_bin
    config = {"cniVersion": "1.0.0", "name": "n", "type": "fake", "mode": mode}
    with pytest.raises(CNIError) as info:
        delegate("ADD", "fake", config, request(bin_dir))
    assert info.value.code == code
    assert text in str(info.value)


@pytest.mark.parametrize("plugin_type", ["", "../fake", "a/b", "missing"])
def test_find_in_path_errors(fake_bin: tuple[Path, Path], plugin_type: str) -> None:
    bin_dir, _ = fake_bin
    with pytest.raises(CNIError) as info:
        find_in_path(plugin_type, [str(bin_dir)])
    assert info.value.code == 7


def test_foreign_executable_is_not_ours(fake_bin: tuple[Path, Path]) -> None:
    bin_dir, _ = fake_bin
    assert podnet_type_of(str(bin_dir / "fake")) is None
    assert podnet_type_of(os.devnull) is None


def test_a_replaced_executable_is_recognised_anew(tmp_path: Path) -> None:
    """What podnet_type_of found is remembered by the file's identity: an executable
    replaced by another (podnet's or not) under the same name is read again."""
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    install_executables(str(ours), agent_socket=str(tmp_path / "agent.sock"), compiled=False)
    exe = tmp_path / "bridge"
    exe.write_bytes((ours / "bridge").read_bytes())
    assert podnet_type_of(str(exe)) == "bridge"
    assert podnet_type_of(str(exe)) == "bridge"  # from memory
    theirs.mkdir()
    (theirs / "bridge").write_bytes(b"#!/bin/sh\nexit 0\n")
    os.replace(theirs / "bridge", exe)
    assert podnet_type_of(str(exe)) is None
    os.replace(ours / "host-local", exe)
    assert podnet_type_of(str(exe)) == "host-local"


class RecordingExec:
    """An Exec that runs nothing: it records what it is asked and answers from `answers`
    (plugin type -> stdout)."""

    def __init__(self, answers: dict[str, bytes]) -> None:
        self.answers = answers
        self.found: list[tuple[str, tuple[str, ...]]] = []
        self.ran: list[tuple[str, dict[str, str], dict[str, Any]]] = []

    def find_in_path(self, plugin_type: str, paths: Sequence[str]) -> str:
        self.found.append((plugin_type, tuple(paths)))
        return f"/recorded/{plugin_type}"

    def exec_plugin(self, executable: str, cni_env: Mapping[str, str], stdin: bytes) -> bytes:
        self.ran.append((executable, dict(cni_env), json.loads(stdin)))
        return self.answers.get(os.path.basename(executable), b"")


def test_delegation_goes_through_the_hosts_exec(tmp_path: Path) -> None:
    """Every delegated verb asks the host's Exec, which sees the CNI variables and the
    config; podnet's own types too (only podnet's Exec runs those in-process)."""
    recorder = RecordingExec({"host-local": b'{"ips": [{"address": "10.1.1.9/24"}]}'})
    caller = Request(
        command="ADD",
        container_id="c1",
        netns="/run/netns/x",
        ifname="eth0",
        path=("/opt/cni/bin",),
        host=Host(plugin_exec=recorder),
    )
    config = {"cniVersion": "1.0.0", "name": "n", "type": "host-local"}
    result = delegate("ADD", "host-local", config, caller)
    assert result is not None and result.cni_version == "1.0.0"  # fixed up to the config's
    assert [str(ip.address) for ip in result.ips] == ["10.1.1.9/24"]
    for verb in ("CHECK", "DEL", "GC", "STATUS"):
        assert delegate(verb, "host-local", config, caller) is None
    assert recorder.found == [("host-local", ("/opt/cni/bin",))] * 5
    executables = {executable for executable, _, _ in recorder.ran}
    assert executables == {"/recorded/host-local"}
    verbs = [env["CNI_COMMAND"] for _, env, _ in recorder.ran]
    assert verbs == ["ADD", "CHECK", "DEL", "GC", "STATUS"]
    add_env = recorder.ran[0][1]
    assert add_env == {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "c1",
        "CNI_NETNS": "/run/netns/x",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/opt/cni/bin",
        LOCKED_ENV: "1",  # the caller holds the attachment's lock
    }
    locked = [env.get(LOCKED_ENV) for _, env, _ in recorder.ran]
    assert locked == ["1", "1", "1", None, None]  # only the verbs that name an attachment
    assert all(conf == config for _, _, conf in recorder.ran)


def test_podnets_exec_runs_podnets_own_plugins_here_with_the_callers_host(
    tmp_path: Path,
) -> None:
    """An executable install-cni wrote is run in this process: the delegate's verb sees
    the caller's host, and nothing is exec'd."""
    bin_dir = tmp_path / "bin"
    install_executables(str(bin_dir), ["host-local"])

    class Recording(PodnetExec):
        def __init__(self) -> None:
            super().__init__()
            self.here: list[str] = []

        def plugin_here(self, executable: str) -> Plugin | None:
            self.here.append(executable)
            return super().plugin_here(executable)

        def exec_plugin(self, executable: str, cni_env: Mapping[str, str], stdin: bytes) -> bytes:
            raise AssertionError(f"{executable} was exec'd")

    recorder = Recording()
    host = Host(plugin_exec=recorder)
    caller = Request(
        command="ADD",
        container_id="c1",
        netns="/run/netns/x",
        ifname="eth0",
        path=(str(bin_dir),),
        host=host,
    )
    config = {
        "cniVersion": "1.0.0",
        "name": "n",
        "type": "host-local",
        "ipam": {"type": "host-local", "dataDir": str(tmp_path / "ipam"), "subnet": "10.1.1.0/24"},
    }
    result = delegate("ADD", "host-local", config, caller)
    assert result is not None
    assert [str(ip.address) for ip in result.ips] == ["10.1.1.2/24"]
    assert recorder.here == [str(bin_dir / "host-local")]
    assert os.listdir(tmp_path / "ipam" / "n").count("10.1.1.2") == 1

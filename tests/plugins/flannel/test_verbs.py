"""flannel's verbs in-process, with a recording fake as the delegate: what is saved,
what the delegate gets, and what happens when subnet.env or the saved config is missing."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from podnet.cni import Host, dispatch
from podnet.plugins.meta.flannel import NOT_WRITTEN, PLUGIN

FAKE_BRIDGE = """#!{python} -I
import json, os, sys
conf = json.load(sys.stdin)
command = os.environ["CNI_COMMAND"]
with open({record!r}, "a") as f:
    f.write(json.dumps({{"cmd": command, "cid": os.environ.get("CNI_CONTAINERID"),
                        "conf": conf}}) + "\\n")
if conf.get("fail") == command:
    print(json.dumps({{"code": 11, "msg": "delegate failed on purpose"}})); sys.exit(1)
if command == "ADD":
    print(json.dumps({{"cniVersion": conf["cniVersion"],
                      "ips": [{{"address": "10.244.1.2/24", "gateway": "10.244.1.1"}}]}}))
"""

SUBNET_ENV = (
    "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\n"
    "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
)


class Node:
    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.record = tmp_path / "calls.jsonl"
        fake = self.bin / "bridge"
        fake.write_text(FAKE_BRIDGE.format(python=sys.executable, record=str(self.record)))
        fake.chmod(0o755)
        self.subnet_env = tmp_path / "subnet.env"
        self.subnet_env.write_text(SUBNET_ENV)
        self.data_dir = tmp_path / "flannel"

    def conf(self, version: str = "1.1.0", **extra: Any) -> dict[str, Any]:
        return {
            "cniVersion": version,
            "name": "cbr0",
            "type": "flannel",
            "subnetFile": str(self.subnet_env),
            "dataDir": str(self.data_dir),
            "delegate": {"hairpinMode": True, "isDefaultGateway": True},
            **extra,
        }

    def run(self, command: str, conf: dict[str, Any], cid: str = "pod-a") -> tuple[int, Any]:
        env = {"CNI_COMMAND": command, "CNI_PATH": str(self.bin)}
        if command in ("ADD", "DEL", "CHECK"):
            env.update(CNI_CONTAINERID=cid, CNI_IFNAME="eth0", CNI_NETNS="/var/run/netns/x")
        code, out = dispatch(PLUGIN, env, json.dumps(conf).encode())
        return code, json.loads(out) if out else None

    def calls(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines()]


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return Node(tmp_path)


def test_add_saves_the_delegate_config_then_delegates(node):
    code, result = node.run("ADD", node.conf())
    assert code == 0, result
    assert result["ips"] == [{"address": "10.244.1.2/24", "gateway": "10.244.1.1"}]
    [call] = node.calls()
    delegate = call["conf"]
    assert delegate["type"] == "bridge" and delegate["mtu"] == 1450
    assert delegate["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24"}]]
    saved = node.data_dir / "pod-a"
    assert json.loads(saved.read_bytes()) == delegate
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(node.data_dir.stat().st_mode) == 0o700


class RecordingExec:
    """An Exec that records each delegated call and answers ADD with one address."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def find_in_path(self, plugin_type: str, paths: Sequence[str]) -> str:
        return f"/recorded/{plugin_type}"

    def exec_plugin(self, executable: str, cni_env: Mapping[str, str], stdin: bytes) -> bytes:
        self.calls.append((executable, cni_env["CNI_COMMAND"], json.loads(stdin)))
        if cni_env["CNI_COMMAND"] != "ADD":
            return b""
        return b'{"ips": [{"address": "10.244.1.2/24"}]}'


def test_the_delegate_is_run_through_the_hosts_exec(node):
    """With a host whose Exec records, flannel's delegation runs no process: the Exec
    sees the bridge config flannel built, for ADD and for the DEL that follows."""
    recorder = RecordingExec()
    env = {
        "CNI_COMMAND": "ADD",
        "CNI_PATH": str(node.bin),
        "CNI_CONTAINERID": "pod-a",
        "CNI_IFNAME": "eth0",
        "CNI_NETNS": "/var/run/netns/x",
    }
    stdin = json.dumps(node.conf()).encode()
    code, out = dispatch(PLUGIN, env, stdin, Host(plugin_exec=recorder))
    assert code == 0, out
    assert json.loads(out)["ips"] == [{"address": "10.244.1.2/24"}]
    code, out = dispatch(PLUGIN, {**env, "CNI_COMMAND": "DEL"}, stdin, Host(plugin_exec=recorder))
    assert (code, out) == (0, b"")
    [(exe, add, added), (_, delete, deleted)] = recorder.calls
    assert (exe, add, delete) == ("/recorded/bridge", "ADD", "DEL")
    assert added["type"] == "bridge" and added["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24"}]]
    assert deleted == added  # DEL delegates the saved config
    assert node.calls() == [], "the fake bridge executable never ran"


def test_add_without_subnet_env_says_what_to_check(node):
    node.subnet_env.unlink()
    code, error = node.run("ADD", node.conf())
    assert (code, error["code"], error["msg"]) == (1, 11, NOT_WRITTEN)
    assert str(node.subnet_env) in error["details"]
    assert node.calls() == []
    assert not node.data_dir.exists()


def test_failed_add_keeps_the_saved_config_for_the_del_that_follows(node):
    code, error = node.run("ADD", node.conf(delegate={"fail": "ADD"}))
    assert (code, error["msg"]) == (1, "delegate failed on purpose")
    assert (node.data_dir / "pod-a").exists()
    assert node.run("DEL", node.conf(delegate={"fail": "ADD"}))[0] == 0
    assert not (node.data_dir / "pod-a").exists()


def test_del_uses_the_saved_config_even_after_subnet_env_changed(node):
    node.run("ADD", node.conf())
    node.subnet_env.write_text(SUBNET_ENV.replace("10.244.1.1/24", "10.244.9.1/24"))
    assert node.run("DEL", node.conf()) == (0, None)
    add, delete = node.calls()
    assert delete["cmd"] == "DEL" and delete["conf"] == add["conf"]
    assert not (node.data_dir / "pod-a").exists()
    assert node.run("DEL", node.conf()) == (0, None)  # again: rebuilt, delegated, fine


def test_del_keeps_the_saved_config_when_the_delegate_fails(node):
    node.run("ADD", node.conf(delegate={"fail": "DEL"}))
    code, error = node.run("DEL", node.conf())
    assert (code, error["code"]) == (1, 11)
    assert (node.data_dir / "pod-a").exists()


def test_del_without_saved_config_rebuilds_it_and_still_releases(node):
    node.run("ADD", node.conf())
    os.unlink(node.data_dir / "pod-a")
    assert node.run("DEL", node.conf()) == (0, None)
    add, delete = node.calls()
    assert delete["cmd"] == "DEL" and delete["conf"] == add["conf"]


# b"": what a power loss can leave of the saved config, which is not fsync'd
@pytest.mark.parametrize("saved", [b"{half a conf", b""])
def test_del_with_an_unreadable_saved_config_rebuilds_it(node, saved):
    node.run("ADD", node.conf())
    (node.data_dir / "pod-a").write_bytes(saved)
    assert node.run("DEL", node.conf()) == (0, None)
    assert node.calls()[-1]["cmd"] == "DEL"
    assert not (node.data_dir / "pod-a").exists()


def test_del_with_nothing_to_go_on_succeeds_without_the_delegate(node):
    node.subnet_env.unlink()
    assert node.run("DEL", node.conf()) == (0, None)
    assert node.calls() == []


def test_check_delegates_with_prev_result(node):
    _, result = node.run("ADD", node.conf())
    assert node.run("CHECK", node.conf(prevResult=result)) == (0, None)
    check = node.calls()[-1]
    assert check["cmd"] == "CHECK" and check["conf"]["prevResult"] == result
    code, error = node.run("CHECK", node.conf(prevResult=result), cid="pod-b")
    assert (code, error["msg"]) == (
        1,
        f"flannel: no delegate config saved for container pod-b in {node.data_dir}",
    )
    node.subnet_env.write_text(SUBNET_ENV.replace("10.244.1.1/24", "10.244.9.1/24"))
    code, error = node.run("CHECK", node.conf(prevResult=result))
    assert error["msg"] == "flannel: subnet.env has changed since the pod was added"


def test_status_follows_subnet_env_and_asks_the_delegate(node):
    assert node.run("STATUS", node.conf()) == (0, None)
    assert node.calls()[-1]["cmd"] == "STATUS"
    node.subnet_env.unlink()
    code, error = node.run("STATUS", node.conf())
    assert (code, error["code"], error["msg"]) == (1, 50, NOT_WRITTEN)
    node.subnet_env.write_text("garbage")
    assert node.run("STATUS", node.conf())[1]["code"] == 50
    node.subnet_env.write_text(SUBNET_ENV)
    code, error = node.run("STATUS", node.conf(delegate={"fail": "STATUS"}))
    assert (code, error["code"]) == (1, 11)  # the delegate's own answer


def test_gc_forwards_and_removes_saved_configs_of_gone_containers(node):
    for cid in ("pod-a", "pod-b", "pod-c"):
        node.run("ADD", node.conf(), cid=cid)
    other = dict(json.loads((node.data_dir / "pod-c").read_bytes()), name="othernet")
    (node.data_dir / "pod-c").write_text(json.dumps(other))  # another network's pod
    valid = [{"containerID": "pod-a", "ifname": "eth0"}]
    conf = node.conf(**{"cni.dev/valid-attachments": valid, "cni.dev/attachments": valid})
    assert node.run("GC", conf) == (0, None)
    assert sorted(os.listdir(node.data_dir)) == ["pod-a", "pod-c"]
    gc = node.calls()[-1]
    assert gc["cmd"] == "GC"
    assert gc["conf"]["cni.dev/valid-attachments"] == valid
    assert gc["conf"]["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24"}]]


def test_gc_removes_unfinished_saves_of_gone_containers(node):
    """A save killed before its rename, of a container the runtime forgot (no DEL comes):
    GC removes it, as it removes that container's saved config."""
    node.run("ADD", node.conf(), cid="pod-a")
    saved = (node.data_dir / "pod-a").read_bytes()
    other = json.dumps(dict(json.loads(saved), name="othernet")).encode()
    for name, content in [
        (".tmp-pod-a~1111", saved[:10]),  # valid: its ADD may still be running
        (".tmp-gone~2222", saved[:10]),  # half a config
        (".tmp-gone~3333", b""),
        (".tmp-empty~4444", b""),
        (".tmp-other~5555", other),  # another network's, whole: its GC decides
    ]:
        (node.data_dir / name).write_bytes(content)
    valid = [{"containerID": "pod-a", "ifname": "eth0"}]
    assert node.run("GC", node.conf(**{"cni.dev/valid-attachments": valid})) == (0, None)
    assert sorted(os.listdir(node.data_dir)) == [".tmp-other~5555", ".tmp-pod-a~1111", "pod-a"]


def test_gc_without_subnet_env_still_cleans_and_reports(node):
    node.run("ADD", node.conf(), cid="pod-a")
    node.subnet_env.unlink()
    code, error = node.run("GC", node.conf(**{"cni.dev/valid-attachments": []}))
    assert code == 1 and NOT_WRITTEN in error["msg"]
    assert os.listdir(node.data_dir) == []
    code, error = node.run("GC", node.conf())
    assert (code, error["code"]) == (1, 7)


@pytest.mark.parametrize("version", ["0.3.1", "0.4.0", "1.0.0"])
def test_gc_and_status_need_1_1_0(node, version):
    assert node.run("STATUS", node.conf(version))[1]["code"] == 1
    assert node.run("GC", node.conf(version, **{"cni.dev/valid-attachments": []}))[1]["code"] == 1


def test_a_lone_surrogate_in_the_config_is_a_clean_code_6(node):
    """JSON may spell a lone surrogate ("\\ud800"); it has no UTF-8 form, so the saved
    config cannot hold it: a CNI error, not a traceback and code 999 (issue 13)."""
    code, error = node.run("ADD", node.conf(delegate={"bridge": "cni\ud800"}))
    assert (code, error["code"]) == (1, 6), error
    assert "lone surrogate (\\ud800)" in error["msg"]
    assert node.calls() == []
    assert not (node.data_dir / "pod-a").exists()
    assert not node.data_dir.exists() or os.listdir(node.data_dir) == []

"""Delegation to a plugin that is not podnet's: found in CNI_PATH and exec'd."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from podnet.cni import CNIError, Request, find_in_path
from podnet.plugins._delegate import delegate, podnet_type_of

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

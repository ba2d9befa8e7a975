from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from podnet.plugins import PLUGIN_MODULES
from podnet.plugins._delegate import podnet_type_of
from podnet.plugins._install import (
    default_conflist,
    executable_text,
    install_executables,
    write_conflist,
)

PODNET = [sys.executable, "-m", "podnet.cli.main"]


def test_executable_names_the_interpreter_directly() -> None:
    text = executable_text("host-local", agent_socket="/run/podnet/cni.sock")
    first = text.splitlines()[0]
    assert first == f"#!{sys.executable} -IS"
    assert "/shims/" not in first
    assert "agent_socket='/run/podnet/cni.sock'" in text


def test_install_writes_the_bytecode_the_fallback_imports(tmp_path: Path) -> None:
    # PYTHONDONTWRITEBYTECODE is set on some machines: no pod would ever write it.
    spec = importlib.util.find_spec("podnet.cni._skel")
    assert spec is not None and spec.origin is not None
    cached = Path(importlib.util.cache_from_source(spec.origin))
    cached.unlink(missing_ok=True)
    warnings: list[str] = []
    install_executables(str(tmp_path / "bin"), ["loopback"], warn=warnings.append)
    assert warnings == []
    assert cached.stat().st_mtime >= Path(spec.origin).stat().st_mtime
    # and it is what the interpreter uses: the source's mtime and size in its header
    header = cached.read_bytes()[:16]
    assert int.from_bytes(header[12:16], "little") == Path(spec.origin).stat().st_size


def test_conflist_defaults() -> None:
    conf = default_conflist()
    assert conf["cniVersion"] == "1.1.0"
    assert conf["name"] == "cbr0"
    assert conf["plugins"] == [  # kube-flannel's cni-conf.json
        {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ]


def test_conflist_with_node_paths() -> None:
    conf = default_conflist(subnet_file="/lab/n1/subnet.env", data_dir="/lab/n1/cni")
    assert conf["plugins"] == [
        {
            "type": "flannel",
            "delegate": {"hairpinMode": True, "isDefaultGateway": True},
            "subnetFile": "/lab/n1/subnet.env",
            "dataDir": "/lab/n1/cni/flannel",
            "ipam": {"dataDir": "/lab/n1/cni/networks"},
        },
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ]
    assert {k: v for k, v in conf.items() if k != "plugins"} == {
        "name": "cbr0",
        "cniVersion": "1.1.0",
    }


def test_conflist_replaced_atomically(tmp_path: Path) -> None:
    path = write_conflist(str(tmp_path), default_conflist("0.3.1"))
    inode = os.stat(path).st_ino
    write_conflist(str(tmp_path), default_conflist("1.1.0"))
    assert os.stat(path).st_ino != inode  # a new file renamed over, never rewritten in place
    assert json.loads(Path(path).read_text())["cniVersion"] == "1.1.0"
    assert sorted(os.listdir(tmp_path)) == ["10-flannel.conflist"]


def test_cli_installs_every_plugin_and_conflist(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            *PODNET,
            "install-cni",
            "--bin-dir",
            str(tmp_path / "bin"),
            "--conf-dir",
            str(tmp_path / "net.d"),
            "--cni-version",
            "0.4.0",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    installed = sorted(os.listdir(tmp_path / "bin"))
    assert installed == sorted(PLUGIN_MODULES)
    for name in installed:
        exe = tmp_path / "bin" / name
        assert os.access(exe, os.X_OK)
        assert podnet_type_of(str(exe)) == name
    conf = json.loads((tmp_path / "net.d" / "10-flannel.conflist").read_text())
    # kube-flannel's file: no subnetFile or dataDir keys unless asked for
    assert conf == default_conflist("0.4.0")
    assert conf["cniVersion"] == "0.4.0"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bin-dir", "/proc/podnet-cannot-write"], "podnet install-cni:"),
        (["--cni-version", "9.9.9"], "invalid choice"),
    ],
)
def test_cli_errors_are_one_line(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [*PODNET, "install-cni", *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr

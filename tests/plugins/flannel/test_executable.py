"""flannel through the executable install-cni writes, delegating to podnet's host-local
(found in CNI_PATH, run in-process): STATUS and GC reach the delegate for real. No
namespace is needed: host-local never opens CNI_NETNS."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from podnet.plugins._install import install_executables

SUBNET_ENV = (
    "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/30\n"
    "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
)


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Any]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    install_executables(str(bin_dir), ["flannel", "host-local"])
    (tmp_path / "subnet.env").write_text(SUBNET_ENV)
    conf = {
        "cniVersion": "1.1.0",
        "name": "cbr0",
        "type": "flannel",
        "subnetFile": str(tmp_path / "subnet.env"),
        "dataDir": str(tmp_path / "flannel"),
        "ipam": {"dataDir": str(tmp_path / "networks")},
        # host-local as the delegate itself: it reads the delegate's "ipam" section
        "delegate": {"type": "host-local"},
    }
    return {"bin": bin_dir, "conf": conf, "tmp": tmp_path}


def flannel(setup: dict[str, Any], command: str, conf: dict[str, Any], cid: str = "") -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    env.update(CNI_COMMAND=command, CNI_PATH=str(setup["bin"]))
    if cid:
        env.update(CNI_CONTAINERID=cid, CNI_IFNAME="eth0", CNI_NETNS="/var/run/netns/pn-unused")
    proc = subprocess.run(
        [str(setup["bin"] / "flannel")],
        input=json.dumps(conf).encode(),
        env=env,
        capture_output=True,
        check=False,
    )
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else None


def test_status_and_gc_reach_the_delegate(setup):
    conf = setup["conf"]
    assert flannel(setup, "STATUS", conf) == (0, None)
    code, result = flannel(setup, "ADD", conf, cid="pod-a")
    assert code == 0, result
    assert [ip["address"] for ip in result["ips"]] == ["10.244.1.2/30"]  # the only one

    # the /30 is full: host-local's STATUS answers 50 through flannel
    code, error = flannel(setup, "STATUS", conf)
    assert (code, error["code"]) == (1, 50)
    assert "no IP addresses available in range set: 10.244.1.1-10.244.1.2" in error["msg"]

    # GC with pod-a forgotten: host-local frees the address, flannel its saved config
    code, out = flannel(setup, "GC", {**conf, "cni.dev/valid-attachments": []})
    assert code == 0, out
    assert os.listdir(setup["tmp"] / "flannel") == []
    assert flannel(setup, "STATUS", conf) == (0, None)

    (setup["tmp"] / "subnet.env").unlink()
    code, error = flannel(setup, "STATUS", conf)
    assert (code, error["code"]) == (1, 50)
    assert "has not written subnet.env" in error["msg"]


def test_version(setup):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    env["CNI_COMMAND"] = "VERSION"
    out = subprocess.run([str(setup["bin"] / "flannel")], env=env, capture_output=True, check=True)
    assert json.loads(out.stdout)["supportedVersions"][-1] == "1.1.0"

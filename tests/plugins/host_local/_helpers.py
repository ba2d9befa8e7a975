"""Running host-local executables (ours, as install-cni writes it, and the reference)
with a real environment and stdin, and looking at the data dir."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REFERENCE = "/usr/lib/cni/host-local"
# host-local never opens the netns; any path will do.
NETNS = "/var/run/netns/pn-not-opened"


@dataclass
class Outcome:
    code: int
    stdout: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    def addresses(self) -> list[str]:
        return [ip["address"] for ip in self.json.get("ips", [])]


def netconf(
    data_dir: Path | str,
    *,
    version: str = "1.0.0",
    name: str = "net1",
    ranges: list[list[dict[str, str]]] | None = None,
    **ipam: Any,
) -> dict[str, Any]:
    ipam_conf: dict[str, Any] = {"type": "host-local", "dataDir": str(data_dir)}
    ipam_conf["ranges"] = ranges if ranges is not None else [[{"subnet": "10.1.2.0/24"}]]
    ipam_conf.update(ipam)
    return {"cniVersion": version, "name": name, "type": "bridge", "ipam": ipam_conf}


def environ(
    command: str,
    *,
    cid: str = "c1",
    ifname: str = "eth0",
    netns: str = NETNS,
    path: str = "/usr/lib/cni",
    cni_args: str = "",
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    env.update(
        CNI_COMMAND=command,
        CNI_CONTAINERID=cid,
        CNI_IFNAME=ifname,
        CNI_NETNS=netns,
        CNI_PATH=path,
    )
    if cni_args:
        env["CNI_ARGS"] = cni_args
    return {k: v for k, v in env.items() if v != ""}


def run(exe: str | Path, command: str, conf: Any, **kwargs: Any) -> Outcome:
    stdin = conf if isinstance(conf, bytes) else json.dumps(conf).encode()
    env = kwargs.pop("env", None) or environ(command, **kwargs)
    proc = subprocess.run([str(exe)], input=stdin, env=env, capture_output=True, check=False)
    return Outcome(proc.returncode, proc.stdout)


def start(exe: str | Path, command: str, conf: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
    """The same as `run`, without waiting: for concurrent invocations."""
    proc = subprocess.Popen(
        [str(exe)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=environ(command, **kwargs),
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(conf).encode())
    proc.stdin.close()
    proc.stdin = None  # communicate() must not flush a closed pipe
    return proc


def reservations(network_dir: Path) -> dict[str, bytes]:
    """address -> file content, for every reservation file."""
    if not network_dir.is_dir():
        return {}
    return {
        p.name: p.read_bytes()
        for p in network_dir.iterdir()
        if p.name[0].isdigit() or ":" in p.name
    }


def snapshot(directory: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under `directory`: relative path -> (mode, content)."""
    out = {}
    for path in sorted(directory.rglob("*")):
        st = path.stat()
        content = path.read_bytes() if path.is_file() else b"<dir>"
        out[str(path.relative_to(directory))] = (st.st_mode, content)
    return out

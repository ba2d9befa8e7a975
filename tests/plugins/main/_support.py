"""Helpers of the interface plugins' tests: run a plugin as a runtime does, configs."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podnet.netlink import get_link, list_addresses, list_routes, open_rtnl

REFERENCE_DIR = "/usr/lib/cni"

# Adapter around the reference host-local for 1.1.0 configs (see conftest.py).
# STATUS and GC succeed as libcni's skel answers verbs a plugin does not implement.
HOST_LOCAL_SHIM = """#!{python} -I
import json, os, subprocess, sys
command = os.environ.get("CNI_COMMAND", "")
data = sys.stdin.buffer.read()
conf = json.loads(data) if data.strip() else {{}}
if command in ("STATUS", "GC"):
    sys.exit(0)
asked = conf.get("cniVersion")
if asked == "1.1.0":
    conf["cniVersion"] = "1.0.0"
    conf.pop("prevResult", None)
proc = subprocess.run(["{reference}/host-local"], input=json.dumps(conf).encode(),
                      capture_output=True)
out = proc.stdout
if out.strip() and asked == "1.1.0":
    obj = json.loads(out)
    obj["cniVersion"] = "1.1.0"
    out = json.dumps(obj).encode()
sys.stdout.buffer.write(out)
sys.stderr.buffer.write(proc.stderr)
sys.exit(proc.returncode)
"""


@dataclass
class Outcome:
    code: int
    out: dict[str, Any] | None
    stderr: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def error(self) -> str:
        assert self.out is not None, self.stderr
        return f"{self.out.get('msg', '')} {self.out.get('details', '')}"


@dataclass
class Cni:
    """Runs plugins inside `node`, as the runtime would."""

    root: Path
    node: str
    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def path_for(self, version: str) -> str:
        dirs = [str(self.root / "bin")]
        if version == "1.1.0":
            dirs.append(str(self.root / "shim"))
        dirs.append(REFERENCE_DIR)
        return ":".join(dirs)

    def run(
        self,
        command: str,
        config: dict[str, Any],
        *,
        netns: str = "",
        container_id: str = "c1",
        ifname: str = "eth0",
        args: str = "",
        executable: str | None = None,
    ) -> Outcome:
        exe = executable or str(self.root / "bin" / config["type"])
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "PODNET_LOG_FILE": os.environ.get("PODNET_LOG_FILE", ""),
            "PODNET_LOCK_DIR": os.environ.get("PODNET_LOCK_DIR", ""),  # the test run's
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container_id,
            "CNI_NETNS": netns,
            "CNI_IFNAME": ifname,
            "CNI_PATH": self.path_for(config.get("cniVersion", "")),
            **self.extra_env,
        }
        if args:
            env["CNI_ARGS"] = args
        proc = subprocess.run(
            ["nsenter", f"--net={self.node}", exe],
            input=json.dumps(config).encode(),
            env={k: v for k, v in env.items() if v},
            capture_output=True,
            timeout=60,
            check=False,
        )
        out = json.loads(proc.stdout) if proc.stdout.strip() else None
        return Outcome(proc.returncode, out, proc.stderr.decode(errors="replace"))

    def add(self, config: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        outcome = self.run("ADD", config, **kwargs)
        assert outcome.ok, outcome.out or outcome.stderr
        assert outcome.out is not None
        return outcome.out


def bridge_conf(
    version: str,
    data_dir: Path,
    *,
    subnet: str = "10.244.1.0/24",
    name: str = "cbr0",
    ipam: dict[str, Any] | None = None,
    **keys: Any,
) -> dict[str, Any]:
    """kube-flannel's delegate config for a node with podCIDR `subnet`."""
    conf: dict[str, Any] = {
        "cniVersion": version,
        "name": name,
        "type": "bridge",
        "bridge": "cni0",
        "isGateway": True,
        "isDefaultGateway": True,
        "hairpinMode": True,
        "ipMasq": False,
        "mtu": 1450,
        "ipam": {
            "type": "host-local",
            "dataDir": str(data_dir),
            "ranges": [[{"subnet": subnet}]],
            **(ipam or {}),
        },
    }
    conf.update(keys)
    return conf


def with_prev(config: dict[str, Any], result: dict[str, Any] | None) -> dict[str, Any]:
    """The config a runtime sends to DEL and CHECK: the ADD result as prevResult
    (DEL only from 0.4.0 on, as libcni)."""
    out = dict(config)
    if result is not None:
        out["prevResult"] = result
    return out


def in_netns(netns: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nsenter", f"--net={netns}", *argv], capture_output=True, text=True, check=False
    )


def ping(netns: str, address: str) -> bool:
    return in_netns(netns, "ping", "-c1", "-W1", address).returncode == 0


# ---- what the node and the pods look like -----------------------------------------


def node_veths(node: str) -> list[str]:
    from podnet.netlink import list_links, open_rtnl

    with open_rtnl(node) as nl:
        return sorted(link.name for link in list_links(nl) if link.kind == "veth")


def node_veths_once_settled(node: str, attempts: int = 100) -> list[str]:
    """The node's veths once the kernel has finished destroying namespaces deleted just
    before: it does that in the background (cleanup_net), taking their veths' peers in
    the node with them. Not a timing assertion: it waits up to 10 s for what must come."""
    veths = node_veths(node)
    for _ in range(attempts):
        if not veths:
            break
        time.sleep(0.1)
        veths = node_veths(node)
    return veths


def reservations(data_dir: Path, network: str = "cbr0") -> list[str]:
    """IPs host-local holds for the network (its files named by address)."""
    directory = data_dir / network
    if not directory.exists():
        return []
    skip = ("lock",)
    return sorted(
        p.name for p in directory.iterdir() if p.name not in skip and not p.name.startswith("last_")
    )


def masq_elements(node: str, network: str = "cbr0") -> dict[str, str]:
    """Pod address -> owner comment in the network's masquerade sets."""
    proc = in_netns(node, "nft", "-j", "list", "table", "inet", f"podnet-masq-{network}")
    if proc.returncode != 0:
        return {}
    out: dict[str, str] = {}
    for item in json.loads(proc.stdout)["nftables"]:
        declared = item.get("set")
        if declared and declared["name"].startswith("pods"):
            for elem in declared.get("elem", []):
                inner = elem["elem"] if isinstance(elem, dict) else {"val": elem}
                out[inner["val"]] = inner.get("comment", "")
    return out


def pod_address(result: dict[str, Any]) -> str:
    return str(result["ips"][0]["address"]).split("/")[0]


def bridge_state(node: str, name: str = "cni0") -> tuple[list[str], int]:
    """The bridge's IPv4 addresses and its MTU, in the node namespace."""
    with open_rtnl(node) as nl:
        bridge = get_link(nl, name)
        addresses = [str(a.address) for a in list_addresses(nl, bridge.index, version=4)]
        return addresses, bridge.mtu


def default_gateway(pod: str) -> str | None:
    """The gateway of the pod's IPv4 default route, if it has one."""
    with open_rtnl(pod) as nl:
        for route in list_routes(nl, version=4):
            if route.dst.prefixlen == 0:
                return str(route.gateway)
    return None

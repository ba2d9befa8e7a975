"""`podnet demo-ipam`: host-local alone, through its real executable, step by step.

Installs the CNI executables into a temp bin dir (as `podnet install-cni` does), gives a
handful of pods addresses through the real `host-local` executable (env + stdin, exactly
as a container runtime calls it), shows what lands on disk, then "forgets" some pods the
way a crashed node does and lets GC free exactly their addresses.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from podnet.cni import VALID_ATTACHMENTS_KEY, CNIError, decode_result, exec_plugin, plugin_environ
from podnet.plugins import install_executables

NETWORK = "cbr0"
SUBNET_V4 = "10.244.1.0/24"
SUBNET_V6 = "fd00:10:244:1::/120"
REFERENCE = "/usr/lib/cni/host-local"
POD_NAMES = [
    "coredns-7db6d8ff4d-x2k9p",
    "web-5d4f8c7b9-abcde",
    "web-5d4f8c7b9-fghij",
    "api-6b8f9d5c4-klmno",
    "redis-0",
    "worker-7c9d8e6f5-pqrst",
    "metrics-agent-uvw12",
    "batch-job-xyz34",
]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo-ipam", help="host-local alone: pods get addresses, GC frees forgotten ones"
    )
    parser.add_argument("--pods", type=int, default=6, help="how many pods (2..8, default 6)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir afterwards")
    parser.set_defaults(handler=run)


@dataclass
class Pod:
    name: str
    container_id: str
    addresses: list[str]
    via: str
    millis: float


class _Style:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def green(self, text: str) -> str:
        return self._wrap("32", text)

    def red(self, text: str) -> str:
        return self._wrap("31", text)


def run(args: argparse.Namespace) -> int:
    if not 2 <= args.pods <= len(POD_NAMES):
        print(f"podnet demo-ipam: --pods must be between 2 and {len(POD_NAMES)}", file=sys.stderr)
        return 2
    style = _Style(sys.stdout.isatty())
    workdir = tempfile.mkdtemp(prefix="podnet-demo-")
    try:
        _demo(workdir, args.pods, style)
    except (CNIError, OSError) as exc:
        print(f"podnet demo-ipam: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(style.dim(f"\n(kept {workdir})"))
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _demo(workdir: str, count: int, style: _Style) -> None:
    bin_dir = os.path.join(workdir, "bin")
    data_dir = os.path.join(workdir, "networks")
    os.makedirs(bin_dir)
    install_executables(bin_dir, ["host-local"])
    ours = os.path.join(bin_dir, "host-local")
    reference = REFERENCE if os.access(REFERENCE, os.X_OK) else None
    # 1.0.0 so the reference plugin (Debian's 1.1.1 speaks up to 1.0.0) can take part;
    # GC and STATUS need 1.1.0 and only podnet's host-local implements them.
    conf: dict[str, Any] = {
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "type": "bridge",
        "ipam": {
            "type": "host-local",
            "dataDir": data_dir,
            "ranges": [[{"subnet": SUBNET_V4}], [{"subnet": SUBNET_V6}]],
            "routes": [{"dst": "0.0.0.0/0"}],
        },
    }

    print(style.bold("podnet demo-ipam: host-local IPAM through the real CNI executable"))
    print(f"  bin dir   {bin_dir}  {style.dim('(podnet install-cni)')}")
    print(f"  data dir  {data_dir}")
    print(f"  network   {NETWORK}: one address from {SUBNET_V4} and one from {SUBNET_V6}")

    print(style.bold(f"\n1. ADD: {count} pods ask for addresses"))
    pods = []
    for index, name in enumerate(POD_NAMES[:count]):
        # every third pod through the reference binary, on the same data dir
        use_reference = reference is not None and index % 3 == 2
        exe = reference if use_reference and reference else ours
        container_id = f"{index + 1:02d}" + os.urandom(6).hex()
        started = time.perf_counter()
        stdout = exec_plugin(exe, _env("ADD", bin_dir, container_id), json.dumps(conf).encode())
        millis = (time.perf_counter() - started) * 1000
        result = decode_result(stdout)
        addresses = [ip["address"] for ip in result.get("ips", [])]
        via = "reference" if use_reference else "podnet"
        pods.append(Pod(name, container_id, addresses, via, millis))
    _pod_table(pods, style)

    net_dir = os.path.join(data_dir, NETWORK)
    first = pods[0]
    v4 = first.addresses[0].split("/")[0]
    with open(os.path.join(net_dir, v4), "rb") as handle:
        content = handle.read()
    with open(os.path.join(net_dir, "last_reserved_ip.0"), "rb") as handle:
        last = handle.read().decode()
    print(style.bold("\n2. On disk: one file per address, the reference's format"))
    print(f"  {net_dir}/{v4}")
    legend = style.dim("<containerID>\\r\\n<ifname>")
    print(f"    {content!r}   {legend}")
    print(f"  last_reserved_ip.0 = {last}   {style.dim('(round-robin continues after it)')}")
    names = sorted(os.listdir(net_dir))
    print(f"  {len(names)} files: " + style.dim(", ".join(names)))

    forgotten = pods[1::2][: max(1, count // 3)]
    live = [p for p in pods if p not in forgotten]
    print(
        style.bold(f"\n3. The node crashes: the runtime never sends DEL for {len(forgotten)} pods")
    )
    for pod in forgotten:
        print(f"  {style.red('leaked')}  {pod.name:<26} {'  '.join(pod.addresses)}")

    gc_conf = dict(conf, cniVersion="1.1.0")
    gc_conf[VALID_ATTACHMENTS_KEY] = [
        {"containerID": p.container_id, "ifname": "eth0"} for p in live
    ]
    before = set(os.listdir(net_dir))
    exec_plugin(ours, _env("GC", bin_dir, ""), json.dumps(gc_conf).encode())
    freed = sorted(before - set(os.listdir(net_dir)))
    print(style.bold(f"\n4. GC with the {len(live)} live pods as cni.dev/valid-attachments"))
    owners = {a.split("/")[0]: p.name for p in pods for a in p.addresses}
    for address in freed:
        print(f"  {style.green('freed')}   {address:<22} {style.dim('was ' + owners[address])}")
    kept = [a for a in sorted(before & set(os.listdir(net_dir))) if a in owners]
    print(f"  kept    {len(kept)} addresses of {len(live)} live pods")

    status_conf = dict(conf, cniVersion="1.1.0")
    exec_plugin(ours, _env("STATUS", bin_dir, ""), json.dumps(status_conf).encode())
    print(
        style.bold("\n5. STATUS: ") + style.green("ready") + " (addresses left in every range set)"
    )

    for pod in live:
        exec_plugin(ours, _env("DEL", bin_dir, pod.container_id), json.dumps(conf).encode())
    left = [n for n in os.listdir(net_dir) if n[0].isdigit() or ":" in n]
    print(style.bold("\n6. DEL of the live pods: ") + f"{len(left)} reservations left")


def _env(command: str, bin_dir: str, container_id: str) -> dict[str, str]:
    cni_env = {"CNI_COMMAND": command, "CNI_PATH": bin_dir}
    if container_id:
        cni_env.update(
            CNI_CONTAINERID=container_id,
            CNI_IFNAME="eth0",
            CNI_NETNS=f"/var/run/netns/cni-{container_id}",  # host-local never opens it
        )
    return plugin_environ(cni_env)


def _pod_table(pods: list[Pod], style: _Style) -> None:
    header = f"  {'POD':<26} {'CONTAINER':<14} {'IPv4':<16} {'IPv6':<24} {'PLUGIN':<10} TIME"
    print(style.dim(header))
    for pod in pods:
        v4, v6 = (pod.addresses + ["", ""])[:2]
        print(
            f"  {pod.name:<26} {pod.container_id[:12]:<14} {v4:<16} {v6:<24} "
            f"{pod.via:<10} {pod.millis:4.0f} ms"
        )

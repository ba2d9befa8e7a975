"""A node with pods and an outside host, all namespaces, for hostPort traffic tests.

    outside (192.0.2.2) ── ul0 ── node (192.0.2.1, cni0 10.244.1.1/24) ── pod1 10.244.1.5
                                                                       └─ pod2 10.244.1.6

Each pod runs a server on port 80 (TCP and UDP) that answers every connection or datagram
with the source address it saw, so a test can tell whether the node masqueraded it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

NODE_IP = "192.0.2.1"
OUTSIDE_IP = "192.0.2.2"
GATEWAY = "10.244.1.1"
POD_IPS = ("10.244.1.5", "10.244.1.6")
NODE_IP6 = "fd00:192::1"
OUTSIDE_IP6 = "fd00:192::2"
GATEWAY6 = "fd00:244:1::1"
POD_IPS6 = ("fd00:244:1::5", "fd00:244:1::6")

_SERVER = r"""
import socket, sys, threading
def dual(kind):
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", 80))
    return s
def seen(peer):
    return peer[0].removeprefix("::ffff:").encode()
def tcp():
    s = dual(socket.SOCK_STREAM); s.listen(64)
    while True:
        c, peer = s.accept(); c.sendall(seen(peer)); c.close()
def udp():
    s = dual(socket.SOCK_DGRAM)
    while True:
        _, peer = s.recvfrom(100); s.sendto(seen(peer), peer)
threading.Thread(target=udp, daemon=True).start()
print("ready", flush=True)
tcp()
"""

_CLIENT = r"""
import socket, sys
kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
try:
    if kind == "tcp":
        s = socket.create_connection((host, port), timeout=3)
        print(s.recv(100).decode())
    else:
        s = socket.socket(family, socket.SOCK_DGRAM); s.settimeout(3)
        s.sendto(b"hi", (host, port)); print(s.recvfrom(100)[0].decode())
except OSError as exc:
    print(f"error: {type(exc).__name__}")
"""


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def name(path: str) -> str:
    return os.path.basename(path)


@dataclass
class HostPortNode:
    node: str
    outside: str
    pods: list[str]
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def build(self) -> None:
        n, o = name(self.node), name(self.outside)
        sh("ip", "-n", n, "link", "set", "lo", "up")
        sh("ip", "-n", o, "link", "set", "lo", "up")
        sh("ip", "-n", n, "link", "add", "ul0", "type", "veth", "peer", "name", "ul0", "netns", o)
        sh("ip", "-n", n, "addr", "add", f"{NODE_IP}/24", "dev", "ul0")
        sh("ip", "-n", o, "addr", "add", f"{OUTSIDE_IP}/24", "dev", "ul0")
        sh("ip", "-n", n, "link", "set", "ul0", "up")
        sh("ip", "-n", o, "link", "set", "ul0", "up")
        sh("ip", "-n", o, "route", "add", "10.244.1.0/24", "via", NODE_IP)
        # IPv6 too (nodad: usable at once), for dual-stack pods
        sh("ip", "-n", n, "addr", "add", f"{NODE_IP6}/64", "dev", "ul0", "nodad")
        sh("ip", "-n", o, "addr", "add", f"{OUTSIDE_IP6}/64", "dev", "ul0", "nodad")
        sh("ip", "-n", o, "route", "add", "fd00:244:1::/64", "via", NODE_IP6)
        sh("ip", "-n", n, "link", "add", "cni0", "type", "bridge")
        sh("ip", "-n", n, "addr", "add", f"{GATEWAY}/24", "dev", "cni0")
        sh("ip", "-n", n, "addr", "add", f"{GATEWAY6}/64", "dev", "cni0", "nodad")
        sh("ip", "-n", n, "link", "set", "cni0", "up")
        sh("ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        pairs = zip(self.pods, POD_IPS, POD_IPS6, strict=False)
        for index, (pod, address, address6) in enumerate(pairs):
            p, host_end = name(pod), f"veth{index}"
            sh("ip", "-n", n, "link", "add", host_end, "type", "veth", "peer", "name", "eth0")
            sh("ip", "-n", n, "link", "set", "eth0", "netns", p)
            sh("ip", "-n", n, "link", "set", host_end, "master", "cni0", "up")
            # as flannel's delegate config asks of bridge (hairpinMode)
            sh("ip", "-n", n, "link", "set", host_end, "type", "bridge_slave", "hairpin", "on")
            sh("ip", "-n", p, "link", "set", "lo", "up")
            sh("ip", "-n", p, "addr", "add", f"{address}/24", "dev", "eth0")
            sh("ip", "-n", p, "link", "set", "eth0", "up")
            sh("ip", "-n", p, "route", "add", "default", "via", GATEWAY)
            sh("ip", "-n", p, "addr", "add", f"{address6}/64", "dev", "eth0", "nodad")
            sh("ip", "-n", p, "route", "add", "default", "via", GATEWAY6)
            self._serve(pod)

    def _serve(self, pod: str) -> None:
        self.servers.append(serve(pod))

    def stop(self) -> None:
        for server in self.servers:
            stop_server(server)

    def connect(self, source: str, host: str, port: int, kind: str = "tcp") -> str:
        return connect(source, host, port, kind)


def serve(netns: str) -> subprocess.Popen[bytes]:
    """A server on port 80 (TCP and UDP) in `netns` that answers with its peer's address."""
    server = subprocess.Popen(
        ["nsenter", f"--net={netns}", sys.executable, "-c", _SERVER],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert server.stdout is not None
    ready = server.stdout.readline()  # the server prints once it listens
    if ready.strip() != b"ready":
        stop_server(server)
        raise AssertionError(f"the server in {netns} did not start")
    return server


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.kill()
    server.wait(timeout=10)
    if server.stdout is not None:
        server.stdout.close()


def connect(source: str, host: str, port: int, kind: str = "tcp") -> str:
    """From namespace `source`: what the server saw as our address, or "error: ..."."""
    proc = subprocess.run(
        ["nsenter", f"--net={source}", sys.executable, "-c", _CLIENT, kind, host, str(port)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return proc.stdout.strip() or f"error: {proc.stderr.strip()}"


def pod_result(
    pod: str, address: str, version: str = "1.0.0", address6: str = ""
) -> dict[str, Any]:
    """What bridge answers for a pod: the bridge, the host veth, the pod's interface
    (with `address6` too, a dual-stack pod)."""
    return {
        "cniVersion": version,
        "interfaces": [
            {"name": "cni0", "mac": "0a:58:0a:f4:01:01"},
            {"name": "veth0", "mac": "0a:58:0a:f4:01:02"},
            {"name": "eth0", "mac": "0a:58:0a:f4:01:05", "sandbox": pod},
        ],
        "ips": [{"address": f"{address}/24", "gateway": GATEWAY, "interface": 2}]
        + (
            [{"address": f"{address6}/64", "gateway": GATEWAY6, "interface": 2}] if address6 else []
        ),
        "routes": [{"dst": "0.0.0.0/0"}],
        "dns": {},
    }


def portmap_conf(
    mappings: list[dict[str, Any]],
    prev: dict[str, Any] | None,
    *,
    version: str = "1.0.0",
    network: str = "cbr0",
    **keys: Any,
) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "cniVersion": version,
        "name": network,
        "type": "portmap",
        "capabilities": {"portMappings": True},
        "runtimeConfig": {"portMappings": mappings},
        **keys,
    }
    if prev is not None:
        conf["prevResult"] = prev
    return conf


def wait_for(predicate: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())

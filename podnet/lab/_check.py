"""The connectivity matrix: real ICMP from every pod to every other pod."""

from __future__ import annotations

import concurrent.futures
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from podnet.lab._cluster import LabPod


@dataclass(frozen=True)
class Endpoint:
    name: str
    node: str
    netns: str
    ip: str


def endpoints_of(pods: Sequence[LabPod], version: int = 4) -> list[Endpoint]:
    """Every pod with an address of IP `version` (a dual-stack pod has one of each)."""
    found = []
    for p in pods:
        ip = next((a for a in p.sandbox.ips if (":" in a) == (version == 6)), "")
        if ip:
            found.append(Endpoint(p.sandbox.name, p.node, p.sandbox.netns, ip))
    return found


def ping(src: Endpoint, dst: Endpoint, *, attempts: int = 3) -> bool:
    """One echo from src's namespace to dst's IP; a first miss (ARP, a neighbour entry
    being programmed) gets another try."""
    for _ in range(attempts):
        proc = subprocess.run(
            ["nsenter", f"--net={src.netns}", "ping", "-n", "-q", "-c", "1", "-W", "1", dst.ip],
            capture_output=True,
            check=False,
        )
        if proc.returncode == 0:
            return True
    return False


def matrix(endpoints: Sequence[Endpoint], *, workers: int = 8) -> dict[tuple[str, str], bool]:
    pairs = [(a, b) for a in endpoints for b in endpoints if a.name != b.name]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda pair: ping(*pair), pairs))
    return {(a.name, b.name): ok for (a, b), ok in zip(pairs, results, strict=True)}

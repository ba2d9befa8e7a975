"""What both node IPAM benchmarks (the controller on the store, and through the API) ask
of the podCIDRs they saw, and how they report when each appeared."""

from __future__ import annotations

import statistics

CLUSTER_CIDR = "10.0.0.0/8"
NODE_MASK = 24


def node_names(nodes: int) -> list[str]:
    return [f"node-{i:05d}" for i in range(nodes)]


def wait_seconds(nodes: int) -> float:
    """How long registering, or assigning, `nodes` nodes may take before the run fails."""
    return max(600.0, nodes * 0.2)


def require_one_each(finished: bool, cidrs: dict[str, str], nodes: int) -> None:
    """Every node got a podCIDR in time, and no two got the same."""
    if not finished:
        raise SystemExit(f"only {len(cidrs)} of {nodes} nodes got a podCIDR")
    if len(set(cidrs.values())) != nodes:
        raise SystemExit("a podCIDR was given twice")


def latency_ms(latencies: list[float]) -> dict[str, float]:
    """p50, p90, p99 and max of sorted latencies (seconds), in milliseconds."""
    last = len(latencies) - 1
    return {
        "p50": round(1000 * statistics.median(latencies), 1),
        "p90": round(1000 * latencies[int(0.9 * last)], 1),
        "p99": round(1000 * latencies[int(0.99 * last)], 1),
        "max": round(1000 * latencies[-1], 1),
    }

"""What keeping a trace and the metrics costs the agent per CNI request.

A three-hop chain shaped like flannel -> bridge -> host-local (each hop a `call`, the last
two returning a Result as big as the real ones) runs in this process with and without a
trace, the trace then recorded as the agent records it (ring + Prometheus histograms).
The difference in CPU time per request is the trace's cost; it is set against the CPU per
ADD of podnet's chain in the last `make bench` (bench/results/cni.json), CPU against CPU,
which the machine's load does not skew as it skews wall time.

    .venv/bin/python -m bench.trace [--requests 20000]

Results: bench/results/trace.json and one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from ipaddress import ip_interface, ip_network
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from podnet.agent import RequestLog
from podnet.cni import Host, Interface, IPConfig, Plugin, Request, Result, Route, Trace, call

RESULTS = Path(__file__).parent / "results" / "trace.json"
CNI_RESULTS = Path(__file__).parent / "results" / "cni.json"
TARGET = 0.02  # of the CPU per ADD
ENV = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "0" * 64,
    "CNI_IFNAME": "eth0",
    "CNI_NETNS": "/run/netns/bench",
    "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web",
}
CONFIG = {
    "cniVersion": "1.0.0",
    "name": "cbr0",
    "type": "bridge",
    "bridge": "cni0",
    "isGateway": True,
    "ipMasq": False,
    "mtu": 1450,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24"}]]},
}
IPAM = Result(
    ips=[IPConfig(ip_interface("10.244.1.2/24"), gateway=ip_interface("10.244.1.1/24").ip)],
    routes=[Route(ip_network("10.244.0.0/16"))],
)
BRIDGED = Result(
    interfaces=[
        Interface("cni0", "aa:bb:cc:00:00:01"),
        Interface("veth12345678", "aa:bb:cc:00:00:02"),
        Interface("eth0", "aa:bb:cc:00:00:03", sandbox="/run/netns/bench"),
    ],
    ips=[IPConfig(ip_interface("10.244.1.2/24"), ip_interface("10.244.1.1/24").ip, 2)],
    routes=[Route(ip_network("10.244.0.0/16")), Route(ip_network("0.0.0.0/0"))],
)

host_local = Plugin(name="host-local", add=lambda r: IPAM, delete=lambda r: None)
bridge = Plugin(
    name="bridge",
    add=lambda r: (call(host_local, r), BRIDGED)[1],
    delete=lambda r: None,
)


def _flannel_add(request: Request) -> Result:
    result = call(bridge, request.with_config("ADD", CONFIG))
    assert result is not None
    return result


flannel = Plugin(name="flannel", add=_flannel_add, delete=lambda r: None)


def cpu_per_request(requests: int, log: RequestLog | None) -> float:
    """CPU seconds per request of the chain (verbs only: the version gates and the
    plugins' work are the same with or without a trace)."""
    with Host() as host:
        request = Request(command="ADD", config={**CONFIG, "type": "flannel"}, host=host)
        start = time.process_time()
        for _ in range(requests):
            if log is not None:
                host.trace = Trace("flannel", ENV)
            flannel.add(request)
            if log is not None and host.trace is not None:
                log.record(host.trace.finish(0))
                host.trace = None
        return (time.process_time() - start) / requests


def cni_cpu_per_add() -> tuple[float, str]:
    try:
        rows: list[dict[str, Any]] = json.loads(CNI_RESULTS.read_text())["summary"]
        started = json.loads(CNI_RESULTS.read_text())["started"]
    except (OSError, ValueError, KeyError):
        return 0.0, ""
    for row in rows:
        if "launcher" in row["impl"] and row["concurrency"] == 1 and not row["ipMasq"]:
            return float(row["add_cpu_ms_per_pod"]) / 1000, str(started)
    return 0.0, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=20000, help="requests per variant")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args(argv)
    cpu_per_request(1000, RequestLog(CollectorRegistry()))  # warm both paths
    plain = min(cpu_per_request(args.requests, None) for _ in range(3))
    traced = min(cpu_per_request(args.requests, RequestLog(CollectorRegistry())) for _ in range(3))
    cost = max(traced - plain, 0.0)
    per_add, measured = cni_cpu_per_add()
    share = cost / per_add if per_add else None
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "requests": args.requests,
        "cpu_us_per_request_untraced": round(plain * 1e6, 2),
        "cpu_us_per_request_traced": round(traced * 1e6, 2),
        "trace_cost_cpu_us": round(cost * 1e6, 2),
        "cni_cpu_ms_per_add": round(per_add * 1000, 3) if per_add else None,
        "cni_bench_started": measured,
        "trace_share_of_add_cpu": round(share, 4) if share is not None else None,
        "target": TARGET,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    verdict = "n/a" if share is None else f"{share:.1%} of an ADD's CPU (target < {TARGET:.0%})"
    print(f"trace + metrics: {cost * 1e6:.1f} us CPU per request, {verdict}", file=sys.stderr)
    return 0 if share is None or share < TARGET else 1


if __name__ == "__main__":
    sys.exit(main())

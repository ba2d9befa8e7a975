"""Pod ADD/DEL latency and throughput, podnet side by side with the reference plugins.

Every run gets a fresh node namespace (so its first ADD creates cni0, as on a new node)
and N fresh pod namespaces. This process enters the node namespace itself, so each
plugin is exec'd exactly as a runtime would exec it, with no nsenter in the timed path.
Implementations are interleaved (A B C A B C ...) so machine noise hits all of them.

    .venv/bin/python -m bench.cni [--pods 200] [--concurrency 1 4 8] [--reps 3]

Results: bench/results/cni.json (+ cni.png when matplotlib is available).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podnet.netlink import create_netns, delete_netns

REFERENCE_BIN = "/usr/lib/cni"
RESULTS = Path(__file__).parent / "results"
CLONE_NEWNET = 0x40000000


@dataclass
class Impl:
    name: str
    chain: str  # "bridge" feeds bridge -> host-local directly; "flannel" goes through flannel
    reference: bool = False
    agent: bool = False


IMPLS = [
    Impl("reference bridge->host-local", "bridge", reference=True),
    Impl("podnet bridge->host-local", "bridge"),
    Impl("podnet flannel->bridge->host-local (agent)", "flannel", agent=True),
    Impl("podnet flannel->bridge->host-local (in-process)", "flannel"),
]


@dataclass
class Phase:
    latencies_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_ms: float = 0.0
    errors: list[str] = field(default_factory=list)

    def summary(self, pods: int) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else 0.0

        return {
            "p50_ms": pct(0.5),
            "p90_ms": pct(0.9),
            "p99_ms": pct(0.99),
            "max_ms": round(max(lat), 2) if lat else 0.0,
            "pods_per_s": round(pods / self.wall_s, 1) if self.wall_s else 0.0,
            "cpu_ms_per_pod": round(self.cpu_ms / pods, 2),
            "errors": len(self.errors),
            "first_error": self.errors[0] if self.errors else "",
        }


def setns_fd(fd: int) -> None:
    """Move this (main) thread, and so every plugin process it starts, into a namespace."""
    if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


def setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        setns_fd(fd)
    finally:
        os.close(fd)


def bridge_conf(data_dir: str, masq: bool, version: str) -> dict[str, Any]:
    # Exactly the delegate flannel renders from subnet.env (see reference-performance.md).
    return {
        "cniVersion": version,
        "name": "cbr0",
        "type": "bridge",
        "bridge": "cni0",
        "hairpinMode": True,
        "isDefaultGateway": True,
        "isGateway": True,
        "ipMasq": masq,
        "mtu": 1450,
        "ipam": {
            "type": "host-local",
            "dataDir": data_dir,
            "ranges": [[{"subnet": "10.244.1.0/24"}]],
            "routes": [{"dst": "10.244.0.0/16"}],
        },
    }


def flannel_conf(work: str, masq: bool, version: str) -> dict[str, Any]:
    subnet_env = os.path.join(work, "subnet.env")
    with open(subnet_env, "w") as handle:
        handle.write(
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\n"
            f"FLANNEL_MTU=1450\nFLANNEL_IPMASQ={'false' if masq else 'true'}\n"
        )
    return {
        "cniVersion": version,
        "name": "cbr0",
        "type": "flannel",
        "subnetFile": subnet_env,
        "dataDir": os.path.join(work, "flannel"),
        "ipam": {"type": "host-local", "dataDir": os.path.join(work, "ipam")},
        "delegate": {"hairpinMode": True, "isDefaultGateway": True},
    }


def proc_cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks * 1000.0 / os.sysconf("SC_CLK_TCK")


def children_cpu_ms() -> float:
    t = os.times()
    return (t.children_user + t.children_system) * 1000.0


def run_phase(
    command: str,
    exe: str,
    conf: dict[str, Any],
    pods: list[str],
    env_base: dict[str, str],
    concurrency: int,
    agent_pid: int | None,
) -> tuple[Phase, list[dict[str, Any]]]:
    stdin = json.dumps(conf).encode()
    phase = Phase()
    results: list[dict[str, Any]] = []

    def one(i: int) -> None:
        env = dict(env_base)
        env.update(
            CNI_COMMAND=command,
            CNI_CONTAINERID=f"bench-pod-{i:04d}",
            CNI_NETNS=pods[i],
            CNI_IFNAME="eth0",
            CNI_ARGS=f"IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod{i}",
        )
        start = time.perf_counter()
        proc = subprocess.run([exe], input=stdin, env=env, capture_output=True, check=False)
        phase.latencies_ms.append((time.perf_counter() - start) * 1000.0)
        if proc.returncode != 0:
            phase.errors.append(
                proc.stdout.decode(errors="replace")[:300] or proc.stderr.decode()[:300]
            )
        elif command == "ADD":
            results.append(json.loads(proc.stdout))

    cpu0 = children_cpu_ms() + (proc_cpu_ms(agent_pid) if agent_pid else 0.0)
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(len(pods))))
    phase.wall_s = time.perf_counter() - start
    phase.cpu_ms = children_cpu_ms() + (proc_cpu_ms(agent_pid) if agent_pid else 0.0) - cpu0
    return phase, results


def start_agent(socket_path: str, log: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "podnet.cli.main", "agent", "serve-cni", "--socket", socket_path],
        stdout=subprocess.DEVNULL,
        stderr=open(log, "ab"),  # noqa: SIM115 - lives as long as the agent
    )
    deadline = time.monotonic() + 20
    while not os.path.exists(socket_path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"agent did not start; see {log}")
        time.sleep(0.02)
    return proc


def one_run(
    impl: Impl, pods_n: int, concurrency: int, masq: bool, version: str, podnet_bin: str
) -> dict[str, Any]:
    work = tempfile.mkdtemp(prefix="pn-bench-")
    tag = uuid.uuid4().hex[:6]
    node = create_netns(f"/run/netns/pn-bench-{tag}-node")
    pods = [create_netns(f"/run/netns/pn-bench-{tag}-p{i}") for i in range(pods_n)]
    agent = None
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        setns(node)
        bin_dir = podnet_bin
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "PODNET_LOG_FILE": os.path.join(work, "cni.log"),
        }
        if impl.agent:
            socket_path = os.path.join(work, "agent.sock")
            bin_dir = os.path.join(work, "bin")
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "podnet.cli.main",
                    "install-cni",
                    "--bin-dir",
                    bin_dir,
                    "--agent-socket",
                    socket_path,
                ],
                check=True,
                capture_output=True,
            )
            agent = start_agent(socket_path, os.path.join(work, "agent.log"))
        if impl.chain == "bridge":
            conf = bridge_conf(os.path.join(work, "ipam"), masq, version)
            exe_dir = REFERENCE_BIN if impl.reference else bin_dir
            exe = os.path.join(exe_dir, "bridge")
            env["CNI_PATH"] = exe_dir
        else:
            conf = flannel_conf(work, masq, version)
            exe = os.path.join(bin_dir, "flannel")
            env["CNI_PATH"] = bin_dir
        agent_pid = agent.pid if agent else None
        add, results = run_phase("ADD", exe, conf, pods, env, concurrency, agent_pid)
        ips = {ip["address"] for r in results for ip in r.get("ips", [])}
        dele, _ = run_phase("DEL", exe, conf, pods, env, concurrency, agent_pid)
        leftover = (
            [f for f in os.listdir(os.path.join(work, "ipam", "cbr0")) if f[0].isdigit()]
            if os.path.isdir(os.path.join(work, "ipam", "cbr0"))
            else []
        )
        return {
            "impl": impl.name,
            "concurrency": concurrency,
            "ipMasq": masq,
            "pods": pods_n,
            "distinct_ips": len(ips),
            "leftover_reservations": len(leftover),
            "add": add.summary(pods_n),
            "del": dele.summary(pods_n),
        }
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(10)
        setns_fd(original)
        os.close(original)
        for path in [node, *pods]:
            delete_netns(path)
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--masq", choices=["off", "on", "both"], default="both")
    parser.add_argument("--cni-version", default="1.0.0")
    parser.add_argument("--only", nargs="*", default=None, help="implementation name substrings")
    parser.add_argument("--out", default=str(RESULTS / "cni.json"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench.cni: needs root (it creates network namespaces)", file=sys.stderr)
        return 1
    impls = [i for i in IMPLS if not args.only or any(s in i.name for s in args.only)]
    podnet_bin = tempfile.mkdtemp(prefix="pn-bench-bin-")
    subprocess.run(
        [sys.executable, "-m", "podnet.cli.main", "install-cni", "--bin-dir", podnet_bin],
        check=True,
        capture_output=True,
    )
    masqs = {"off": [False], "on": [True], "both": [False, True]}[args.masq]
    runs = []
    try:
        for rep in range(args.reps):
            for masq in masqs:
                for conc in args.concurrency:
                    for impl in impls:
                        run = one_run(impl, args.pods, conc, masq, args.cni_version, podnet_bin)
                        run["rep"] = rep
                        runs.append(run)
                        print(json.dumps(run), flush=True)
    finally:
        shutil.rmtree(podnet_bin, ignore_errors=True)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
        "pods": args.pods,
        "cni_version": args.cni_version,
        "runs": runs,
        "summary": summarize(runs),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median over reps per (impl, concurrency, masq), with ratios to the reference."""
    groups: dict[tuple[str, int, bool], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["impl"], run["concurrency"], run["ipMasq"]), []).append(run)
    rows = []
    for (impl, conc, masq), items in groups.items():
        row: dict[str, Any] = {"impl": impl, "concurrency": conc, "ipMasq": masq}
        for phase in ("add", "del"):
            for key in ("p50_ms", "p90_ms", "p99_ms", "pods_per_s", "cpu_ms_per_pod"):
                row[f"{phase}_{key}"] = statistics.median(i[phase][key] for i in items)
        rows.append(row)
    for row in rows:
        ref = next(
            (
                r
                for r in rows
                if r["impl"].startswith("reference")
                and r["concurrency"] == row["concurrency"]
                and r["ipMasq"] == row["ipMasq"]
            ),
            None,
        )
        if ref:
            for key in ("add_p50_ms", "del_p50_ms", "add_pods_per_s"):
                row[f"ratio_{key}"] = round(row[key] / ref[key], 2) if ref[key] else None
    return rows


if __name__ == "__main__":
    sys.exit(main())

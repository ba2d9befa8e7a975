"""hostPort ADD/DEL latency: the portmap plugin alone, podnet side by side with the
reference portmap (Debian's containernetworking-plugins 1.1.1, which writes iptables
rules through the iptables-nft binary: a chain per pod, several iptables execs per ADD).

Every pod has one hostPort (10000 + i -> 80/tcp) and its bridge result as prevResult, as
the runtime hands it after flannel -> bridge -> host-local; only portmap runs, so its own
cost is measured, on a fresh node namespace per run (cni0 up with the pods' subnet, so
both implementations also find the interface for route_localnet). Implementations:
  reference portmap             /usr/lib/cni/portmap (iptables)
  podnet launcher               the compiled launcher -> warm agent (libnftables in-process)
  in-process                    agent stopped: the launcher execs the in-process fallback
Interleaved runs, as bench.cni; compare ratios within one run. DEL carries prevResult and
the portMappings, as containerd sends them.

    .venv/bin/python -m bench.portmap [--pods 100] [--concurrency 1 4] [--reps 3]

Results: bench/results/portmap.json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cni import (
    Phase,
    children_cpu_ms,
    proc_cpu_ms,
    setns,
    setns_fd,
    start_agent,
    stop_agent,
)
from podnet.netlink import create_netns, delete_netns
from podnet.plugins import install_executables

REFERENCE_BIN = "/usr/lib/cni"
RESULTS = Path(__file__).parent / "results"
FIRST_HOST_PORT = 10000


@dataclass(frozen=True)
class Impl:
    name: str
    reference: bool = False
    agent: bool = False


REFERENCE = "reference portmap (iptables)"
LAUNCHER = "podnet portmap (launcher -> agent, nftables)"
IN_PROCESS = "podnet portmap (in-process, agent stopped)"
IMPLS = [Impl(REFERENCE, reference=True), Impl(LAUNCHER, agent=True), Impl(IN_PROCESS)]


def reference_unavailable() -> str:
    """Why the reference cannot run here; empty when it can."""
    if not os.access(os.path.join(REFERENCE_BIN, "portmap"), os.X_OK):
        return "no /usr/lib/cni/portmap (containernetworking-plugins)"
    if shutil.which("iptables") is None:
        return "no iptables binary (the reference portmap execs it)"
    return ""


def pod_conf(i: int, version: str, *, with_prev: bool) -> bytes:
    address = f"10.244.{1 + i // 250}.{2 + i % 250}"
    conf: dict[str, Any] = {
        "cniVersion": version,
        "name": "cbr0",
        "type": "portmap",
        "capabilities": {"portMappings": True},
        "runtimeConfig": {
            "portMappings": [
                {"hostPort": FIRST_HOST_PORT + i, "containerPort": 80, "protocol": "tcp"}
            ]
        },
    }
    if with_prev:
        conf["prevResult"] = {
            "cniVersion": version,
            "interfaces": [
                {"name": "cni0", "mac": "0a:58:0a:f4:01:01"},
                {"name": f"veth{i}", "mac": "0a:58:0a:f4:01:02"},
                {"name": "eth0", "mac": "0a:58:0a:f4:01:03", "sandbox": f"/run/netns/pm-{i}"},
            ],
            "ips": [{"address": f"{address}/16", "gateway": "10.244.0.1", "interface": 2}],
        }
    return json.dumps(conf).encode()


def run_phase(
    command: str, exe: str, pods: int, env_base: dict[str, str], concurrency: int, agent: int
) -> Phase:
    phase = Phase()

    def one(i: int) -> None:
        env = dict(env_base)
        env.update(
            CNI_COMMAND=command,
            CNI_CONTAINERID=f"bench-pod-{i:04d}",
            CNI_NETNS=f"/run/netns/pm-{i}",  # never entered: portmap works in the node
            CNI_IFNAME="eth0",
        )
        stdin = pod_conf(i, env_base["BENCH_CNI_VERSION"], with_prev=True)
        start = time.perf_counter()
        proc = subprocess.run([exe], input=stdin, env=env, capture_output=True, check=False)
        phase.latencies_ms.append((time.perf_counter() - start) * 1000.0)
        if proc.returncode != 0:
            phase.errors.append(
                proc.stdout.decode(errors="replace")[:300] or proc.stderr.decode()[:300]
            )

    agent0 = proc_cpu_ms(agent) if agent else 0.0
    cpu0 = children_cpu_ms()
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(pods)))
    phase.wall_s = time.perf_counter() - start
    phase.agent_cpu_ms = (proc_cpu_ms(agent) if agent else 0.0) - agent0
    phase.cpu_ms = children_cpu_ms() - cpu0 + phase.agent_cpu_ms
    return phase


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def leftover_mappings(impl: Impl) -> int:
    """hostPorts mapped in this namespace now: the reference's DNAT rules (a chain
    CNI-DN-... per pod, one DNAT rule per hostPort), or podnet's map elements."""
    if impl.reference:
        saved = subprocess.run(
            ["iptables-save", "-t", "nat"], capture_output=True, text=True, check=True
        ).stdout
        return sum(1 for line in saved.splitlines() if " -j DNAT " in line)
    from podnet.netlink import NftError, nft_list

    try:
        listed = nft_list({"table": {"family": "inet", "name": "podnet-portmap"}})
    except NftError:
        return 0
    return sum(
        len(item["map"].get("elem", []))
        for item in listed
        if "map" in item and item["map"]["name"].startswith(("hostports", "hostipports"))
    )


def one_run(impl: Impl, pods: int, concurrency: int, version: str) -> dict[str, Any]:
    work = tempfile.mkdtemp(prefix="pn-bench-pm-")
    node = create_netns(f"/run/netns/pn-bench-pm-{uuid.uuid4().hex[:6]}")
    agent = None
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    load_start = os.getloadavg()[0]
    try:
        setns(node)  # every plugin process (and the agent) starts in the node
        _ip("link", "set", "lo", "up")
        _ip("link", "add", "cni0", "type", "bridge")
        _ip("addr", "add", "10.244.0.1/16", "dev", "cni0")
        _ip("link", "set", "cni0", "up")
        socket_path = os.path.join(work, "agent.sock")
        bin_dir = os.path.join(work, "bin")
        if not impl.reference:
            install_executables(bin_dir, ["portmap"], agent_socket=socket_path)
        if impl.agent:
            agent = start_agent(socket_path, os.path.join(work, "agent.log"))
        exe_dir = REFERENCE_BIN if impl.reference else bin_dir
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "PODNET_LOG_FILE": os.path.join(work, "cni.log"),
            "CNI_PATH": exe_dir,
            "BENCH_CNI_VERSION": version,
        }
        exe = os.path.join(exe_dir, "portmap")
        agent_pid = agent.pid if agent else 0
        add = run_phase("ADD", exe, pods, env, concurrency, agent_pid)
        mapped = leftover_mappings(impl)
        dele = run_phase("DEL", exe, pods, env, concurrency, agent_pid)
        return {
            "impl": impl.name,
            "concurrency": concurrency,
            "pods": pods,
            "mapped_after_add": mapped,
            "mapped_after_del": leftover_mappings(impl),
            "loadavg_1min": [load_start, os.getloadavg()[0]],
            "add": add.summary(pods),
            "del": dele.summary(pods),
        }
    finally:
        if agent is not None:
            stop_agent(agent)
        setns_fd(original)
        os.close(original)
        delete_netns(node)
        shutil.rmtree(work, ignore_errors=True)


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per implementation and concurrency: medians over the reps, and the ratio to the
    reference of the same concurrency."""
    import statistics

    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["impl"], run["concurrency"]), []).append(run)
    rows = []
    for (impl, conc), group in groups.items():
        row: dict[str, Any] = {"impl": impl, "concurrency": conc}
        for phase in ("add", "del"):
            for key in ("p50_ms", "p99_ms", "pods_per_s", "cpu_ms_per_pod"):
                row[f"{phase}_{key}"] = round(statistics.median(r[phase][key] for r in group), 2)
            row[f"{phase}_errors"] = sum(r[phase]["errors"] for r in group)
        rows.append(row)
    for row in rows:
        ref = next(
            (r for r in rows if r["impl"] == REFERENCE and r["concurrency"] == row["concurrency"]),
            None,
        )
        if ref is not None and row["impl"] != REFERENCE:
            for key in ("add_p50_ms", "del_p50_ms", "add_cpu_ms_per_pod"):
                if ref[key]:
                    row[f"ratio_{key}"] = round(row[key] / ref[key], 2)
    return rows


def _cell(row: dict[str, Any], key: str) -> str:
    """A figure, with its ratio to the reference in parentheses when there is one."""
    ratio = row.get(f"ratio_{key}")
    return f"{row[key]} ({ratio})" if ratio is not None else str(row[key])


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| conc | implementation | ADD p50 ms | ADD p99 ms | ADD CPU ms/pod | "
        "DEL p50 ms | DEL p99 ms |\n|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for row in sorted(rows, key=lambda r: (r["concurrency"], r["impl"] != REFERENCE, r["impl"])):
        lines.append(
            f"| {row['concurrency']} | {row['impl']} | {_cell(row, 'add_p50_ms')} "
            f"| {row['add_p99_ms']} | {_cell(row, 'add_cpu_ms_per_pod')} "
            f"| {_cell(row, 'del_p50_ms')} | {row['del_p99_ms']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cni-version", default="1.0.0")  # the newest the reference speaks
    parser.add_argument("--out", default=str(RESULTS / "portmap.json"))
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.portmap: needs root (network namespaces)", file=sys.stderr)
        return 1
    impls = list(IMPLS)
    skipped = reference_unavailable()
    if skipped:
        print(f"bench.portmap: reference left out: {skipped}", file=sys.stderr)
        impls = [i for i in impls if not i.reference]
    runs = []
    for rep in range(args.reps):
        for conc in args.concurrency:
            order = impls[rep % len(impls) :] + impls[: rep % len(impls)]
            for impl in order:
                run = one_run(impl, args.pods, conc, args.cni_version)
                print(
                    f"rep {rep + 1} c{conc} {impl.name}: ADD p50 {run['add']['p50_ms']} ms, "
                    f"DEL p50 {run['del']['p50_ms']} ms, errors "
                    f"{run['add']['errors']}/{run['del']['errors']}",
                    file=sys.stderr,
                )
                runs.append(run)
    rows = summarize(runs)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "pods": args.pods,
        "reference_left_out": skipped,
        "runs": runs,
        "summary": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(markdown_table(rows))
    for run in runs:
        for phase in ("add", "del"):
            if run[phase]["errors"]:
                print(
                    f"{run['impl']} c{run['concurrency']} {phase}: {run[phase]['errors']} "
                    f"error(s), first: {run[phase]['first_error']}",
                    file=sys.stderr,
                )
    # The reference's own failures are a finding, reported above (concurrent ADDs on a
    # fresh node race to create its shared chains); podnet's fail the run.
    ours = [r for r in rows if r["impl"] != REFERENCE]
    return 0 if all(r["add_errors"] == r["del_errors"] == 0 for r in ours) else 1


if __name__ == "__main__":
    sys.exit(main())

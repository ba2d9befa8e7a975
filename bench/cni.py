"""Pod ADD/DEL latency and throughput, podnet side by side with the reference plugins.

Implementations, all fed the same pods; the reference gets the delegate config flannel
renders from subnet.env, podnet the whole kube-flannel chain:
  reference bridge->host-local    /usr/lib/cni, one Go process per plugin
  podnet launcher                 the compiled launcher -> warm agent (what install-cni installs)
  podnet thin                     the Python thin executable -> warm agent (no compiler)
  in-process                      agent stopped: the launcher execs the in-process fallback

Every run gets a fresh node namespace (so its first ADD creates cni0, as on a new node)
and N fresh pod namespaces, on a machine that has settled (idle) after the last run.
This process enters the node namespace itself, so each plugin is exec'd exactly as a
runtime would exec it, with no nsenter in the timed path.
Implementations are interleaved (A B C D, then B C D A, ...) so machine noise hits all of
them; compare ratios within one run. DEL carries each pod's ADD result as prevResult, as
libcni sends it from 0.4.0 on. CPU per pod is user+sys of every plugin process,
plus the agent's own CPU (from /proc/<pid>/stat) for the agent rows.

    .venv/bin/python -m bench.cni [--pods 200] [--concurrency 1 4 8] [--reps 3] [--masq both]
    .venv/bin/python -m bench.cni --report bench/results/cni.json   # chart + table again

Results: bench/results/cni.json, bench/results/cni.png (matplotlib: the `bench` extra),
and a markdown table on stdout for the README.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import ctypes
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podnet.cni import LOCK_DIR_ENV
from podnet.netlink import create_netns, delete_netns
from podnet.plugins import install_executables

REFERENCE_BIN = "/usr/lib/cni"
RESULTS = Path(__file__).parent / "results"
SETTLE_IDLE = 0.9  # the idle share of the CPUs that counts as a settled machine
CLONE_NEWNET = 0x40000000
REFERENCE = "reference bridge->host-local"


@dataclass
class Impl:
    name: str
    short: str
    chain: str  # "bridge" feeds bridge -> host-local directly; "flannel" goes through flannel
    reference: bool = False
    agent: bool = False  # a warm agent serves the executables' requests
    compiled: bool = True  # the launcher (else the Python thin executables)


LAUNCHER = "podnet flannel->bridge->host-local (launcher -> agent)"
IN_PROCESS = "podnet flannel->bridge->host-local (in-process, agent stopped)"
IMPLS = [
    Impl(REFERENCE, "reference", "bridge", reference=True),
    Impl(LAUNCHER, "podnet launcher", "flannel", agent=True),
    Impl(
        "podnet flannel->bridge->host-local (Python thin -> agent)",
        "podnet thin",
        "flannel",
        agent=True,
        compiled=False,
    ),
    Impl(IN_PROCESS, "in-process", "flannel"),
]


@dataclass(frozen=True)
class Target:
    """One of the issue's targets: a ratio podnet / reference in the same run."""

    name: str
    impl: str
    phase: str
    key: str
    masq: bool
    op: str  # "<=" or ">="
    bound: float
    concurrency: tuple[int, ...] = ()  # judged only there (empty: at every one measured)


TARGETS = [
    Target("ADD p50 (no masq)", LAUNCHER, "add", "p50_ms", False, "<=", 0.6, (1, 4)),
    Target("DEL p50 (no masq)", LAUNCHER, "del", "p50_ms", False, "<=", 0.5),
    Target("ADD pods/s at c4 (no masq)", LAUNCHER, "add", "pods_per_s", False, ">=", 1.5, (4,)),
    Target("CPU per ADD (no masq)", LAUNCHER, "add", "cpu_ms_per_pod", False, "<=", 0.5),
    Target("ADD p50 with ipMasq at c1", LAUNCHER, "add", "p50_ms", True, "<=", 0.3, (1,)),
    Target("in-process ADD p50 (no masq)", IN_PROCESS, "add", "p50_ms", False, "<=", 3.0),
]


@dataclass
class Phase:
    latencies_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_ms: float = 0.0
    agent_cpu_ms: float = 0.0
    errors: list[str] = field(default_factory=list)

    def summary(self, pods: int) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "p50_ms": percentile(lat, 0.5),
            "p90_ms": percentile(lat, 0.9),
            "p99_ms": percentile(lat, 0.99),
            "max_ms": round(max(lat), 2) if lat else 0.0,
            "pods_per_s": round(pods / self.wall_s, 1) if self.wall_s else 0.0,
            "cpu_ms_per_pod": round(self.cpu_ms / pods, 2),
            "agent_cpu_ms_per_pod": round(self.agent_cpu_ms / pods, 2),
            "errors": len(self.errors),
            "first_error": self.errors[0] if self.errors else "",
            "latencies_ms": [round(v, 1) for v in self.latencies_ms],
        }


def percentile(ordered: list[float], p: float) -> float:
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2) if ordered else 0.0


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
    """user+sys of every thread of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks * 1000.0 / os.sysconf("SC_CLK_TCK")


def children_cpu_ms() -> float:
    """user+sys of every child process waited for so far, to the microsecond (os.times
    counts clock ticks: 10 ms, more than a launcher's whole run)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * 1000.0


def run_phase(
    command: str,
    exe: str,
    conf: dict[str, Any],
    pods: list[str],
    env_base: dict[str, str],
    concurrency: int,
    agent_pid: int | None,
    prev_results: dict[int, dict[str, Any]] | None = None,
) -> tuple[Phase, dict[int, dict[str, Any]]]:
    """Run `command` for every pod; returns the phase and ADD's results by pod. With
    `prev_results`, each pod's config carries its result as prevResult, as libcni sends
    DEL from 0.4.0 on (the reference's bridge ignores it; podnet's masquerade uses it)."""
    plain = json.dumps(conf).encode()
    phase = Phase()
    results: dict[int, dict[str, Any]] = {}

    def config_for(i: int) -> bytes:
        if prev_results is None or i not in prev_results:
            return plain
        return json.dumps({**conf, "prevResult": prev_results[i]}).encode()

    def one(i: int) -> None:
        stdin = config_for(i)
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
            results[i] = json.loads(proc.stdout)

    agent0 = proc_cpu_ms(agent_pid) if agent_pid else 0.0
    cpu0 = children_cpu_ms()
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(len(pods))))
    phase.wall_s = time.perf_counter() - start
    phase.agent_cpu_ms = (proc_cpu_ms(agent_pid) if agent_pid else 0.0) - agent0
    phase.cpu_ms = children_cpu_ms() - cpu0 + phase.agent_cpu_ms
    return phase, results


# A node's /run, where the attachment locks live, is a tmpfs; this machine's may be on
# the root disk.
LOCKS_PARENT = "/dev/shm" if os.path.isdir("/dev/shm") else None


def start_agent(socket_path: str, log: str, lock_dir: str | None = None) -> subprocess.Popen[bytes]:
    """The agent serving `socket_path`; its attachment locks in `lock_dir` (default:
    where this process's environment puts them)."""
    with open(log, "ab") as stderr:  # the agent keeps its own copy
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "podnet.cli.main",
                "agent",
                "serve-cni",
                "--socket",
                socket_path,
            ],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, LOCK_DIR_ENV: lock_dir} if lock_dir else None,
        )
    deadline = time.monotonic() + 20
    while not os.path.exists(socket_path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"agent did not start; see {log}")
        time.sleep(0.02)
    return proc


def stop_agent(agent: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds: an agent that hangs on its way out
    must not keep the run from removing its namespaces."""
    agent.terminate()
    try:
        agent.wait(grace)
    except subprocess.TimeoutExpired:
        print(f"agent {agent.pid} still running {grace} s after SIGTERM: killed", file=sys.stderr)
        agent.kill()
        agent.wait(10)


def cpu_ticks() -> tuple[int, int]:
    """(idle, total) clock ticks of every CPU since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])  # idle + iowait; user .. steal


def settle(deadline: float, min_idle: float = SETTLE_IDLE) -> float:
    """Wait until the machine is idle (a share `min_idle` of every CPU over 0.5 s), at most
    `deadline` seconds (0: not at all); returns the seconds waited. The kernel destroys a
    run's deleted namespaces (200 pods: veths, routes, sysctl tables) in the background
    for seconds after `ip netns delete` returns, under the rtnl lock that every ADD
    takes: without this, each run would pay for its predecessor's teardown, a different
    one per implementation."""
    start = time.monotonic()
    while deadline > 0:
        idle0, total0 = cpu_ticks()
        time.sleep(0.5)
        idle1, total1 = cpu_ticks()
        waited = time.monotonic() - start
        quiet = total1 == total0 or (idle1 - idle0) / (total1 - total0) >= min_idle
        if quiet or waited >= deadline:
            return round(waited, 1)
    return 0.0


def one_run(
    impl: Impl, pods_n: int, concurrency: int, masq: bool, version: str, settle_s: float = 0.0
) -> dict[str, Any]:
    settled = settle(settle_s)
    work = tempfile.mkdtemp(prefix="pn-bench-")
    locks = tempfile.mkdtemp(prefix="pn-bench-locks-", dir=LOCKS_PARENT)
    tag = uuid.uuid4().hex[:6]
    node = create_netns(f"/run/netns/pn-bench-{tag}-node")
    pods: list[str] = []
    agent = None
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    load_start = os.getloadavg()[0]
    try:
        pods.extend(create_netns(f"/run/netns/pn-bench-{tag}-p{i}") for i in range(pods_n))
        setns(node)
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "PODNET_LOG_FILE": os.path.join(work, "cni.log"),
            # The run's own attachment locks (the agent and the executables share them),
            # removed with the run: a run cut short leaves none in the machine's /run.
            LOCK_DIR_ENV: locks,
        }
        # The in-process row's executables name an agent socket no agent listens on: the
        # path every pod takes while the agent restarts (connect refused, fallback, log).
        socket_path = os.path.join(work, "agent.sock")
        bin_dir = os.path.join(work, "bin")
        if not impl.reference:
            install_executables(bin_dir, agent_socket=socket_path, compiled=impl.compiled)
        if impl.agent:
            agent = start_agent(socket_path, os.path.join(work, "agent.log"), locks)
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
        ips = {ip["address"] for r in results.values() for ip in r.get("ips", [])}
        prev = None if version in ("0.3.0", "0.3.1") else results
        dele, _ = run_phase("DEL", exe, conf, pods, env, concurrency, agent_pid, prev)
        ipam_dir = os.path.join(work, "ipam", "cbr0")
        leftover = (
            [f for f in os.listdir(ipam_dir) if f[0].isdigit()] if os.path.isdir(ipam_dir) else []
        )
        return {
            "impl": impl.name,
            "concurrency": concurrency,
            "ipMasq": masq,
            "pods": pods_n,
            "distinct_ips": len(ips),
            "leftover_reservations": len(leftover),
            "loadavg_1min": [load_start, os.getloadavg()[0]],
            "settle_s": settled,
            "add": add.summary(pods_n),
            "del": dele.summary(pods_n),
        }
    finally:
        if agent is not None:
            stop_agent(agent)
        setns_fd(original)
        os.close(original)
        for path in [node, *pods]:
            delete_netns(path)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(locks, ignore_errors=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pods", type=int, default=200, help="pods per run (default: %(default)s)")
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[1, 4, 8],
        help="pods in flight at once, one run per value (default: 1 4 8)",
    )
    parser.add_argument(
        "--reps",
        type=int,
        default=3,
        help="interleaved repetitions of every run; the summary takes their median "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--masq",
        choices=["off", "on", "both"],
        default="both",
        help="runs without ipMasq, with it, or both (default: %(default)s)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="before each run, wait until the machine is idle (90%% of every CPU over 0.5 s: "
        "the kernel is still destroying the last run's namespaces for seconds), at most "
        "this long; 0: do not wait (default: %(default)s)",
    )
    parser.add_argument(
        "--cni-version",
        default="1.0.0",
        help="cniVersion of the config every pod gets (default: %(default)s)",
    )
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        metavar="SUBSTRING",
        help="only the implementations whose name contains one of these (default: all four)",
    )
    parser.add_argument(
        "--out",
        default=str(RESULTS / "cni.json"),
        help="where the JSON goes, the chart beside it (default: bench/results/cni.json)",
    )
    parser.add_argument(
        "--report",
        metavar="JSON",
        help="only redo chart and table from this JSON, running nothing "
        "(default: run the benchmark)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.report:
        report = json.loads(Path(args.report).read_text())
        write_outputs(report, Path(args.report), write_json=False)
        return 0
    if os.geteuid() != 0:
        print("bench.cni: needs root (it creates network namespaces)", file=sys.stderr)
        return 1
    impls = [i for i in IMPLS if not args.only or any(s in i.name for s in args.only)]
    masqs = {"off": [False], "on": [True], "both": [False, True]}[args.masq]
    runs = []
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load_start = os.getloadavg()
    # kill/TERM: unwind through the finally blocks, which delete the namespaces
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        for rep in range(args.reps):
            for masq in masqs:
                for conc in args.concurrency:
                    # rotate the order every rep: no implementation always goes first
                    shift = rep % len(impls)
                    for impl in impls[shift:] + impls[:shift]:
                        run = one_run(impl, args.pods, conc, masq, args.cni_version, args.settle)
                        run["rep"] = rep
                        runs.append(run)
                        print(json.dumps(brief(run)), flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "started": started,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_model": cpu_model(),
            "arch": platform.machine(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "loadavg_at_start": load_start,
            "loadavg_at_end": os.getloadavg(),
        },
        "pods": args.pods,
        "reps": args.reps,
        "cni_version": args.cni_version,
        "summary": summarize(runs),
        "runs": runs,
    }
    report["targets"] = targets(report["summary"])
    write_outputs(report, Path(args.out), write_json=True)
    return 0


def cpu_model() -> str:
    """The processor's name, so that runs on different machines are not compared."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def brief(run: dict[str, Any]) -> dict[str, Any]:
    """A run without its per-pod latencies, for the progress log."""
    out = dict(run)
    for phase in ("add", "del"):
        out[phase] = {k: v for k, v in run[phase].items() if k != "latencies_ms"}
    return out


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median over reps per (impl, concurrency, masq), with ratios to the reference."""
    groups: dict[tuple[str, int, bool], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["impl"], run["concurrency"], run["ipMasq"]), []).append(run)
    rows = []
    for (impl, conc, masq), items in groups.items():
        row: dict[str, Any] = {"impl": impl, "concurrency": conc, "ipMasq": masq}
        row["runs"] = len(items)
        row["errors"] = sum(i["add"]["errors"] + i["del"]["errors"] for i in items)
        row["loadavg_1min"] = round(statistics.median(i["loadavg_1min"][0] for i in items), 2)
        for phase in ("add", "del"):
            for key in ("p50_ms", "p90_ms", "p99_ms", "pods_per_s", "cpu_ms_per_pod"):
                row[f"{phase}_{key}"] = round(statistics.median(i[phase][key] for i in items), 2)
        rows.append(row)
    for row in rows:
        ref = reference_row(rows, row["concurrency"], row["ipMasq"])
        if ref is None:
            continue
        for phase in ("add", "del"):
            for key in ("p50_ms", "p99_ms", "pods_per_s", "cpu_ms_per_pod"):
                name = f"{phase}_{key}"
                row[f"ratio_{name}"] = round(row[name] / ref[name], 2) if ref[name] else None
    return rows


def reference_row(rows: list[dict[str, Any]], conc: int, masq: bool) -> dict[str, Any] | None:
    return next(
        (
            r
            for r in rows
            if r["impl"] == REFERENCE and r["concurrency"] == conc and r["ipMasq"] == masq
        ),
        None,
    )


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target on its implementation: the ratio, and whether it is met, at every
    concurrency measured that it names."""
    out = []
    for target in TARGETS:
        for row in rows:
            if (row["impl"], row["ipMasq"]) != (target.impl, target.masq):
                continue
            if target.concurrency and row["concurrency"] not in target.concurrency:
                continue
            ratio = row.get(f"ratio_{target.phase}_{target.key}")
            if ratio is None:
                continue
            met = ratio <= target.bound if target.op == "<=" else ratio >= target.bound
            out.append(
                {
                    "target": f"{target.name} {target.op} {target.bound}",
                    "impl": row["impl"],
                    "concurrency": row["concurrency"],
                    "ratio": ratio,
                    "met": met,
                }
            )
    return out


def write_outputs(report: dict[str, Any], out: Path, *, write_json: bool) -> None:
    if write_json:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(to_json(report))
        print(f"wrote {out}")
    try:
        chart = draw_chart(report, out.with_suffix(".png"))
        print(f"wrote {chart}")
    except ImportError:
        print("no chart: matplotlib is missing (pip install -e '.[bench]')", file=sys.stderr)
    print(markdown_table(report))


def to_json(report: dict[str, Any]) -> str:
    """Indented, except one line per run: the per-pod latencies would otherwise take a
    line each."""
    head = {k: v for k, v in report.items() if k != "runs"}
    runs = ",\n  ".join(json.dumps(run) for run in report.get("runs", []))
    text = json.dumps(head, indent=1)
    return text[: text.rindex("}")].rstrip() + f',\n "runs": [\n  {runs}\n ]\n}}\n'


def markdown_table(report: dict[str, Any]) -> str:
    """The README table: medians over reps, ratio to the reference in brackets."""
    short = {i.name: i.short for i in IMPLS}
    lines = [
        f"Measured {report['date']}, {report['pods']} pods per run, median of "
        f"{report['reps']} interleaved reps, {report['machine']['cpus']} CPUs shared with other "
        f"work (1-min load {report['machine']['loadavg_at_start'][0]:.1f} at start, "
        f"{report['machine'].get('loadavg_at_end', [0.0])[0]:.1f} at end); "
        "(x) = ratio to the reference in the same run.",
        "",
        "| masq | conc | implementation | ADD p50 ms | ADD p99 ms | ADD pods/s | ADD CPU ms/pod "
        "| DEL p50 ms | DEL p99 ms | DEL pods/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(row: dict[str, Any], key: str) -> str:
        ratio = row.get(f"ratio_{key}")
        text = f"{row[key]:g}"
        return f"{text} ({ratio:.2f})" if ratio is not None and row["impl"] != REFERENCE else text

    order = {i.name: n for n, i in enumerate(IMPLS)}
    rows = sorted(
        report["summary"], key=lambda r: (r["ipMasq"], r["concurrency"], order.get(r["impl"], 9))
    )
    for row in rows:
        lines.append(
            f"| {'on' if row['ipMasq'] else 'off'} | {row['concurrency']} "
            f"| {short.get(row['impl'], row['impl'])} | {cell(row, 'add_p50_ms')} "
            f"| {cell(row, 'add_p99_ms')} | {cell(row, 'add_pods_per_s')} "
            f"| {cell(row, 'add_cpu_ms_per_pod')} | {cell(row, 'del_p50_ms')} "
            f"| {cell(row, 'del_p99_ms')} | {cell(row, 'del_pods_per_s')} |"
        )
    lines.append("")
    lines.append("| target (podnet / reference) | implementation | conc | ratio | met |")
    lines.append("|---|---|---|---|---|")
    for target in report.get("targets", []):
        met = "yes" if target["met"] else "no"
        lines.append(
            f"| {target['target']} | {short.get(target['impl'], target['impl'])} "
            f"| {target['concurrency']} | {target['ratio']:.2f} | {met} |"
        )
    return "\n".join(lines)


def draw_chart(report: dict[str, Any], path: Path) -> Path:
    """Latency distributions (box plots of every pod of every rep) and throughput, per
    implementation, for ADD and DEL, without and with ipMasq."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    impls = [i for i in IMPLS if any(r["impl"] == i.name for r in report["runs"])]
    concs = sorted({r["concurrency"] for r in report["runs"]})
    masqs = sorted({r["ipMasq"] for r in report["runs"]})
    colors = ["#555555", "#1f77b4", "#2ca02c", "#d62728"]
    fig, axes = plt.subplots(len(masqs), 3, figsize=(18, 5.2 * len(masqs)), squeeze=False)
    width = 0.8 / len(impls)
    for row_index, masq in enumerate(masqs):
        for col, phase in enumerate(("add", "del")):
            ax = axes[row_index][col]
            for k, impl in enumerate(impls):
                data = []
                for conc in concs:
                    lat: list[float] = []
                    for run in report["runs"]:
                        if (run["impl"], run["concurrency"], run["ipMasq"]) == (
                            impl.name,
                            conc,
                            masq,
                        ):
                            lat.extend(run[phase]["latencies_ms"])
                    data.append(lat or [0.0])
                positions = [c + (k - (len(impls) - 1) / 2) * width for c in range(len(concs))]
                parts = ax.boxplot(
                    data,
                    positions=positions,
                    widths=width * 0.9,
                    whis=(1, 99),
                    showfliers=False,
                    patch_artist=True,
                )
                for box in parts["boxes"]:
                    box.set_facecolor(colors[k % len(colors)])
                    box.set_alpha(0.7)
                ax.plot([], [], color=colors[k % len(colors)], linewidth=8, label=impl.short)
            ax.set_xticks(range(len(concs)), [f"concurrency {c}" for c in concs])
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(ticker.ScalarFormatter())
            ax.yaxis.set_minor_formatter(ticker.NullFormatter())
            ax.set_ylabel("ms per pod (box: p25-p75, whiskers: p1-p99)")
            ax.set_title(f"{phase.upper()} latency, ipMasq {'on' if masq else 'off'}")
            ax.grid(axis="y", alpha=0.3)
            ax.legend(fontsize=8)
        ax = axes[row_index][2]
        for k, impl in enumerate(impls):
            for j, phase in enumerate(("add", "del")):
                values = []
                for conc in concs:
                    row = next(
                        (
                            r
                            for r in report["summary"]
                            if (r["impl"], r["concurrency"], r["ipMasq"]) == (impl.name, conc, masq)
                        ),
                        None,
                    )
                    values.append(row[f"{phase}_pods_per_s"] if row else 0.0)
                offset = (k - (len(impls) - 1) / 2) * width + (j - 0.5) * width * 0.45
                ax.bar(
                    [c + offset for c in range(len(concs))],
                    values,
                    width * 0.45,
                    color=colors[k % len(colors)],
                    alpha=0.9 if j == 0 else 0.45,
                    label=f"{impl.short} {phase.upper()}",
                )
        ax.set_xticks(range(len(concs)), [f"concurrency {c}" for c in concs])
        ax.set_ylabel("pods per second (median of reps)")
        ax.set_title(f"Throughput, ipMasq {'on' if masq else 'off'} (solid ADD, pale DEL)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle(
        f"podnet vs reference CNI plugins, {report['pods']} pods per run, {report['date']} "
        f"({report['machine']['cpus']} shared CPUs, 1-min load "
        f"{report['machine']['loadavg_at_start'][0]:.1f} -> "
        f"{report['machine'].get('loadavg_at_end', [0.0])[0]:.1f})"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


if __name__ == "__main__":
    sys.exit(main())

"""The whole pipeline on a lab: store, nodeipam controller, one agent per node, pods
started through the runtime and podnet's plugins, real packets between them."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from podnet.agent import ROUTE_PROTO, Lease, lease_from_node
from podnet.lab import Endpoint, Lab, LabError, LabPod, lab_namespaces, matrix
from podnet.netlink import Rtnl, fdb_entries, get_link, permanent_neighbours, routes_with_proto
from podnet.plugins import CONFLIST_NAME
from podnet.store import EtcdNotInstalled, LocalEtcd

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One 2-node lab (vxlan, sqlite) for the module's tests that leave its nodes as they
    found them; `shared_lab` hands it to each with no pods."""
    tmp = tmp_path_factory.mktemp("two-nodes")
    name = "t" + secrets.token_hex(3)
    netns_dir = tmp / "netns"
    netns_dir.mkdir()
    lab = Lab(name, root=str(tmp / "labs"), netns_dir=str(netns_dir))
    try:
        lab.up(2)
        yield lab
    finally:
        lab.down()
        assert lab_namespaces(name, netns_dir=str(netns_dir)) == []


@pytest.fixture
def shared_lab(two_nodes: Lab) -> Iterator[Lab]:
    """The module's 2-node lab, without pods before the test and after it (every Pod the
    test left is deleted, its sandbox stopped: CNI DEL)."""
    assert two_nodes.pod_objects() == [] and two_nodes.pods() == []
    yield two_nodes
    for pod in two_nodes.pod_objects():
        two_nodes.pod_rm(pod["metadata"]["name"], pod["metadata"]["namespace"])
    assert two_nodes.pods() == []


def start_pods(lab: Lab, per_node: int = 2) -> list[LabPod]:
    pods = []
    for node in lab.node_names():
        for i in range(per_node):
            run = lab.pod_run(f"p{i}-{node}", node)
            pods.append(LabPod(node, run.sandbox))
    return pods


def endpoints(pods: list[LabPod]) -> list[Endpoint]:
    return [Endpoint(p.sandbox.name, p.node, p.sandbox.netns, p.sandbox.ip) for p in pods]


def failed_pairs(pods: list[LabPod]) -> list[tuple[str, str]]:
    return [pair for pair, ok in matrix(endpoints(pods)).items() if not ok]


def leases(lab: Lab) -> dict[str, Lease]:
    found = {}
    for n in lab.nodes():
        lease = lease_from_node(
            n.name, pod_cidr=None, pod_cidrs=n.pod_cidrs, annotations=n.annotations
        )
        assert lease is not None, f"node {n.name} publishes no lease"
        found[n.name] = lease
    return found


@pytest.mark.parametrize("backend", ["vxlan", "host-gw"])
def test_every_pod_reaches_every_other(lab: Lab, backend: str) -> None:
    lab.up(3, backend=backend)
    pods = start_pods(lab)
    ips = [p.sandbox.ip for p in pods]
    assert len(set(ips)) == 6
    by_node = leases(lab)
    for pod in pods:  # each pod's address is inside its own node's podCIDR
        assert ip_address(pod.sandbox.ip) in by_node[pod.node].key
    assert failed_pairs(pods) == []
    if backend != "vxlan":
        return
    # The kernel entries on each node are exactly the other nodes' published leases.
    for name in lab.node_names():
        others = [lease for node, lease in by_node.items() if node != name]
        with Rtnl.open(lab.node(name).netns) as rtnl:
            device = get_link(rtnl, "flannel.1").index
            neighbours = {(str(n.ip), n.mac) for n in permanent_neighbours(rtnl, device)}
            fdb = {(f.mac, str(f.dst)) for f in fdb_entries(rtnl, device)}
            routes = {(str(r.dst), str(r.gateway)) for r in routes_with_proto(rtnl, ROUTE_PROTO)}
        macs = {o.node: o.backend_data.vtep_mac for o in others if o.backend_data is not None}
        assert len(macs) == 2
        assert neighbours == {(str(o.key.network_address), macs[o.node]) for o in others}
        assert fdb == {(macs[o.node], str(o.public_ip)) for o in others}
        assert routes == {(str(o.key), str(o.key.network_address)) for o in others}


def test_agent_restart_keeps_pods_reachable(shared_lab: Lab) -> None:
    lab = shared_lab
    pods = start_pods(lab, per_node=1)
    src = next(p for p in pods if p.node == "n1")
    dst = next(p for p in pods if p.node == "n2")
    pinger = subprocess.Popen(
        [
            "nsenter",
            f"--net={src.sandbox.netns}",
            "ping",
            "-n",
            "-q",
            "-i",
            "0.05",
            "-c",
            "60",
            dst.sandbox.ip,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    lab.restart_agent("n2")
    lab.wait_ready(progress=lambda _: None, timeout=30)
    out, _ = pinger.communicate(timeout=30)
    received = int(out.split(" received")[0].rsplit(" ", 1)[1])
    assert received >= 55, out  # a restart reuses device and MAC: no more than a few lost
    assert failed_pairs(pods) == []


def daemon_pid(lab: Lab, what: str) -> int | None:
    return lab.processes.our_pid(lab.processes.pid_file(what))


def node_ready(lab: Lab, name: str) -> str:
    """The status of the node's Ready condition ("" without one)."""
    with lab.api() as api:
        node = next(n for n in api.list_nodes() if n["metadata"]["name"] == name)
    conditions = node.get("status", {}).get("conditions") or []
    return next((str(c["status"]) for c in conditions if c["type"] == "Ready"), "")


def test_killed_daemons_are_restarted_by_the_lab(lab: Lab) -> None:
    # A short grace for the node lifecycle controller: the drivers beat every 10 s.
    lab.up(2, node_monitor_grace=25)
    pods = start_pods(lab, per_node=1)
    assert lab.agent_status("n2") == ("Ready", 0)
    for what in ("agent-n2", "nodeipam", "apiserver", "driver-n2", "scheduler"):
        pid = daemon_pid(lab, what)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda w=what, old=pid: daemon_pid(lab, w) not in (None, old), 30)
    wait_for(lambda: lab.agent_status("n2") == ("Ready", 1), 60)
    assert lab.agent_status("n1") == ("Ready", 0)
    assert failed_pairs(pods) == []
    # A pod started after the restarts gets an address on the restarted node, through the
    # restarted API server (on the same ports), scheduler and driver.
    late = lab.pod_run("late", "n2")
    assert late.sandbox.ip not in {p.sandbox.ip for p in pods}
    assert lab.pod_run("placed").node == "n1"  # n1 has 1 pod, n2 has 2
    if shutil.which("kubectl"):
        nodes = kubectl(lab, "get", "nodes")
        assert [line.split()[1] for line in nodes.splitlines()[1:]] == ["Ready", "Ready"]
    # A driver that stays dead (stopped: not restarted): its Lease is not renewed, so the
    # node lifecycle controller marks the node NotReady, and the scheduler avoids it.
    lab.processes.stop("driver-n2")
    deadline = time.monotonic() + 90
    while node_ready(lab, "n2") != "Unknown":
        assert time.monotonic() < deadline, "n2 is not marked NotReady"
        time.sleep(0.5)
    assert node_ready(lab, "n1") == "True"
    assert [lab.pod_run(f"after-{i}").node for i in range(2)] == ["n1", "n1"]
    if shutil.which("kubectl"):
        nodes = kubectl(lab, "get", "nodes")
        assert [line.split()[1] for line in nodes.splitlines()[1:]] == ["Ready", "NotReady"]


def test_down_after_kill_9_leaves_nothing(lab: Lab, tmp_path: Path) -> None:
    lab.up(2)
    pods = start_pods(lab, per_node=1)
    # The pods' attachment locks are the lab's: they go with it, DEL or not.
    locks = sorted(p.name for p in Path(lab.dir, "attachments").iterdir())
    assert locks == sorted(f"{p.sandbox.id}:eth0" for p in pods)
    for pid_file in Path(lab.dir, "pids").glob("*.pid"):
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
    lab.down()
    lab.down()  # twice is fine
    assert not Path(lab.dir).exists()
    assert lab_namespaces(lab.name, netns_dir=lab.netns_dir) == []
    with open("/proc/self/mountinfo") as handle:
        mounts = handle.read()
    assert all(p.sandbox.netns not in mounts for p in pods)


def test_with_etcd_store(lab: Lab) -> None:
    try:
        LocalEtcd.binary()
    except EtcdNotInstalled as exc:
        pytest.skip(str(exc))
    lab.up(3, store="etcd")
    assert lab.store_url.startswith("etcd://192.0.2.1:")
    pods = start_pods(lab, per_node=1)
    assert {n.name: bool(n.pod_cidr) for n in lab.nodes()} == {"n1": True, "n2": True, "n3": True}
    assert failed_pairs(pods) == []
    if shutil.which("kubectl"):  # the API server serves the etcd store as well
        done = subprocess.run(
            ["kubectl", "--kubeconfig", lab.kubeconfig, "get", "no", "n3", "-o", "json"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["spec"]["podCIDR"] == lab.nodes()[2].pod_cidr


def test_cli(tmp_path: Path) -> None:
    name = "c" + secrets.token_hex(3)
    podnet = [sys.executable, "-m", "podnet.cli.main", "lab", "--name", name]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*podnet, *args], capture_output=True, text=True, check=False)

    try:
        up = run("up", "--nodes", "2")
        assert up.returncode == 0, up.stderr
        assert "agent on n2 ready" in up.stdout
        kubeconfig = run("kubeconfig")
        assert kubeconfig.returncode == 0 and os.path.exists(kubeconfig.stdout.strip())
        assert run("pod", "run", "a", "--node", "n1").returncode == 0
        assert run("pod", "run", "b", "--node", "n2").returncode == 0
        dup = run("pod", "run", "a", "--node", "n2")
        assert dup.returncode == 1 and len(dup.stderr.strip().splitlines()) == 1
        listing = run("get", "pods", "-o", "wide")
        assert "default/a" in listing.stdout and "n2" in listing.stdout
        check = run("check")
        assert check.returncode == 0, check.stdout
        assert "2/2 pod pairs reach each other" in check.stdout
        assert run("pod", "rm", "a").returncode == 0
        joined = run("node", "add", "n3")
        assert joined.returncode == 0, joined.stderr
        assert run("pod", "run", "c", "--node", "n3").returncode == 0
        assert run("check").returncode == 0
        assert run("node", "rm", "n3").returncode == 0
        nodes = run("get", "nodes")
        assert "n3" not in nodes.stdout and "n2" in nodes.stdout
        assert nodes.stdout.split()[3:5] == ["AGENT", "RESTARTS"]
        assert "Ready" in nodes.stdout
        missing = run("pod", "run", "x", "--node", "n9")
        assert missing.returncode == 1 and "no node 'n9'" in missing.stderr
    finally:
        down = run("down")
        assert down.returncode == 0, down.stderr
    again = run("down")
    assert again.returncode == 0
    assert run("get", "pods").returncode == 1


def vxlan_neighbours(lab: Lab, node: str) -> set[str]:
    """The overlay addresses `node` has permanent neighbour entries for."""
    with Rtnl.open(lab.node(node).netns) as rtnl:
        device = get_link(rtnl, "flannel.1").index
        return {str(n.ip) for n in permanent_neighbours(rtnl, device)}


def wait_for(predicate, timeout: float = 15.0) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "condition not reached"
        time.sleep(0.02)
    return time.monotonic() - start


def test_a_node_joins_and_leaves(lab: Lab) -> None:
    lab.up(3)
    pods = start_pods(lab, per_node=1)
    lab.add_node("n4")
    pods.append(LabPod("n4", lab.pod_run("p0-n4", "n4").sandbox))
    n4 = leases(lab)["n4"]
    vtep = str(n4.key.network_address)
    for node in ("n1", "n2", "n3"):
        waited = wait_for(lambda node=node: vtep in vxlan_neighbours(lab, node))
        print(f"{node} programmed n4 after {waited:.3f}s")
    assert failed_pairs(pods) == []
    lab.remove_node("n4")
    for node in ("n1", "n2", "n3"):
        wait_for(lambda node=node: vtep not in vxlan_neighbours(lab, node))
        with Rtnl.open(lab.node(node).netns) as rtnl:
            routes = {str(r.dst) for r in routes_with_proto(rtnl, ROUTE_PROTO)}
        assert str(n4.subnet) not in routes
    assert "n4" not in {n.name for n in lab.nodes()}
    assert failed_pairs(pods[:3]) == []


def overlay_entries(lab: Lab, node: str, lease: Lease) -> list[str]:
    """What `node` holds to reach `lease`'s pods: its route, neighbour and FDB entry."""
    assert lease.backend_data is not None
    with Rtnl.open(lab.node(node).netns) as rtnl:
        device = get_link(rtnl, "flannel.1").index
        found = [f"route {r.dst}" for r in routes_with_proto(rtnl, ROUTE_PROTO)]
        found += [f"neighbour {n.ip}" for n in permanent_neighbours(rtnl, device)]
        found += [f"fdb {f.mac} {f.dst}" for f in fdb_entries(rtnl, device)]
    wanted = {
        f"route {lease.subnet}",
        f"neighbour {lease.key.network_address}",
        f"fdb {lease.backend_data.vtep_mac} {lease.public_ip}",
    }
    return [entry for entry in found if entry in wanted]


def agent_argv(lab: Lab, node: str) -> list[str]:
    pid = daemon_pid(lab, f"agent-{node}")
    assert pid is not None
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        return handle.read().decode().split("\0")


def test_kubectl_delete_node_drops_it_everywhere_within_a_second(lab: Lab) -> None:
    """Every agent is an API client with its node's own identity; deleting a Node with
    kubectl makes the other agents drop its route, neighbour and FDB entry."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    lab.up(3)
    for node in lab.node_names():
        argv = agent_argv(lab, node)
        assert "--kube-subnet-mgr" in argv and "--store" not in argv
        kubeconfig = argv[argv.index("--kubeconfig") + 1]
        assert kubeconfig == lab.apiserver_files().kubeconfig(f"system:node:{node}")
    n3 = leases(lab)["n3"]
    for node in ("n1", "n2"):
        assert len(overlay_entries(lab, node, n3)) == 3
    done = subprocess.run(
        ["kubectl", "--kubeconfig", lab.kubeconfig, "delete", "node", "n3"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for node in ("n1", "n2"):
        waited = wait_for(lambda node=node: overlay_entries(lab, node, n3) == [], timeout=1.0)
        print(f"{node} dropped n3 {waited:.3f}s after kubectl returned")
    assert "n3" not in {n.name for n in lab.nodes()}


def test_kubectl_on_the_lab(shared_lab: Lab) -> None:
    """The walk-through's `kubectl get no n1 -o json | jq .spec.podCIDR` from this
    machine's shell, and a node's own identity from inside the lab."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    lab = shared_lab
    kubeconfig = lab.kubeconfig

    def kubectl(*args: str, config: str = kubeconfig, netns: str | None = None) -> str:
        prefix = ["nsenter", f"--net={netns}"] if netns else []
        done = subprocess.run(
            [*prefix, "kubectl", "--kubeconfig", config, *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    cidrs = {n.name: n.pod_cidr for n in lab.nodes()}
    node = json.loads(kubectl("get", "no", "n1", "-o", "json"))
    assert node["spec"]["podCIDR"] == cidrs["n1"] != ""
    wide = kubectl("get", "nodes", "-o", "wide")
    assert str(lab.node("n2").ip) in wide
    # Inside the lab, n1's own identity reads nodes from 192.0.2.1:6443 ...
    files = lab.apiserver_files()
    as_n1 = files.kubeconfig("system:node:n1")
    assert "n2" in kubectl(
        "get", "nodes", "-o", "name", config=as_n1, netns=lab.control_plane_netns
    )
    # ... and may not touch n2.
    refused = subprocess.run(
        ["nsenter", f"--net={lab.control_plane_netns}", "kubectl", "--kubeconfig", as_n1,
         "label", "node", "n2", "x=y"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 1 and "Forbidden" in refused.stderr
    assert stat.S_IMODE(os.stat(files.tokens).st_mode) == 0o600
    db = lab.store_url.removeprefix("sqlite://")
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600


def kubectl(lab: Lab, *args: str) -> str:
    done = subprocess.run(
        ["kubectl", "--kubeconfig", lab.kubeconfig, *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_pods_without_a_node_go_to_the_node_with_the_fewest(lab: Lab) -> None:
    """The lab's scheduler binds a Pod without spec.nodeName (pods/binding) to the node
    with the fewest pods; `lab pod run` and `kubectl run` both go through the API."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    lab.up(2)
    # Nodes are Ready (the drivers' heartbeat) and hold their Leases, as kubelet's do.
    nodes = kubectl(lab, "get", "nodes").splitlines()
    assert [line.split()[:2] for line in nodes[1:]] == [["n1", "Ready"], ["n2", "Ready"]]
    leases = kubectl(lab, "get", "leases", "-n", "kube-node-lease", "-o", "name").split()
    assert leases == ["lease.coordination.k8s.io/n1", "lease.coordination.k8s.io/n2"]

    first = lab.pod_run("first", "n1")
    kubectl(lab, "run", "web", "--image=registry.k8s.io/pause:3.9")
    ip = ""

    def has_ip() -> bool:
        nonlocal ip
        ip = kubectl(lab, "get", "pod", "web", "-o", "jsonpath={.status.podIP}")
        return bool(ip)

    wait_for(has_ip, timeout=60)
    pod = json.loads(kubectl(lab, "get", "pod", "web", "-o", "json"))
    assert pod["spec"]["nodeName"] == "n2"  # n1 had a pod already
    assert ip_address(ip) in ip_network({n.name: n.pod_cidr for n in lab.nodes()}["n2"])
    assert {"type": "PodScheduled", "status": "True"}.items() <= pod["status"]["conditions"][
        0
    ].items()
    events = kubectl(lab, "get", "events", "--field-selector", "involvedObject.name=web")
    assert "Successfully assigned default/web to n2" in events
    placed = [lab.pod_run(f"p{i}") for i in range(3)]  # n1 (tie), n2, n1 (tie)
    assert [p.node for p in placed] == ["n1", "n2", "n1"]
    objects = {p["metadata"]["name"]: p for p in lab.pod_objects()}
    assert {n: o["spec"]["nodeName"] for n, o in objects.items()} == {
        "first": "n1",
        "web": "n2",
        "p0": "n1",
        "p1": "n2",
        "p2": "n1",
    }
    assert failed_pairs([first, *placed]) == []

    # Deleting the Pod runs the CNI DEL: the address is free when `pod_rm` returns.
    networks = os.path.join(lab.node_dirs("n1").cni_data_dir, "networks", "cbr0")
    assert os.path.exists(os.path.join(networks, first.sandbox.ip))
    assert lab.pod_rm("first") == "n1"
    assert not os.path.exists(os.path.join(networks, first.sandbox.ip))
    assert all(p.sandbox.key != "default/first" for p in lab.pods())
    with pytest.raises(LabError, match="no pod default/first"):
        lab.pod_rm("first")
    with pytest.raises(LabError, match='pods "web" already exists'):
        lab.pod_run("web", "n1")

    # No node takes pods: the pod waits, PodScheduled False; uncordoned, it runs.
    kubectl(lab, "cordon", "n1", "n2")
    with pytest.raises(LabError, match="not scheduled: 0/2 nodes are available"):
        lab.pod_run("waiting", timeout=3)
    kubectl(lab, "uncordon", "n1", "n2")
    wait_for(
        lambda: bool(kubectl(lab, "get", "pod", "waiting", "-o", "jsonpath={.status.podIP}")), 30
    )
    assert "FailedScheduling" in kubectl(lab, "get", "events")


def test_a_sandbox_that_fails_is_reported_and_retried(lab: Lab) -> None:
    """The node cannot start the sandbox (no conflist): `lab pod run` fails with the
    node's words and removes its Pod; a Pod made with kubectl is tried again and runs
    once the node can."""
    lab.up(1)
    conflist = os.path.join(lab.node_dirs("n1").conf_dir, CONFLIST_NAME)
    saved = Path(conflist).read_bytes()
    os.unlink(conflist)
    with pytest.raises(LabError, match="Failed to create pod sandbox"):
        lab.pod_run("early", "n1")
    assert lab.pod_objects() == []
    with lab.api() as api:
        api.create_pod("patient", "default", "n1")
        uid = api.get_pod("patient", "default")["metadata"]["uid"]
        wait_for(lambda: any(
            e["reason"] == "FailedCreatePodSandBox" for e in api.pod_events("default", uid)
        ), 30)  # fmt: skip
        Path(conflist).write_bytes(saved)
        wait_for(lambda: bool(api.get_pod("patient", "default")["status"].get("podIP")), 30)


def test_pods_are_pod_objects(shared_lab: Lab) -> None:
    """`kubectl run` with spec.nodeName: n1's sandbox driver starts the sandbox and reports
    its IP; `kubectl delete pod` runs the CNI DEL and frees the address."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    lab = shared_lab

    def kubectl(*args: str) -> str:
        done = subprocess.run(
            ["kubectl", "--kubeconfig", lab.kubeconfig, *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    kubectl("run", "web", "--image=registry.k8s.io/pause:3.9",
            '--overrides={"spec":{"nodeName":"n1"}}')  # fmt: skip
    ip = ""

    def has_ip() -> bool:
        nonlocal ip
        ip = kubectl("get", "pod", "web", "-o", "jsonpath={.status.podIP}")
        return bool(ip)

    wait_for(has_ip, timeout=60)
    cidrs = {n.name: n.pod_cidr for n in lab.nodes()}
    assert ip_address(ip) in ip_network(cidrs["n1"])
    pod = json.loads(kubectl("get", "pod", "web", "-o", "json"))
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["hostIP"] == str(lab.node("n1").ip)
    assert pod["status"]["podIPs"] == [{"ip": ip}]
    wide = kubectl("get", "pods", "-o", "wide").splitlines()
    assert wide[1].split()[5:7] == [ip, "n1"]
    assert [(p.node, p.sandbox.name, p.sandbox.ip) for p in lab.pods()] == [("n1", "web", ip)]
    assert kubectl("delete", "pod", "web") == 'pod "web" deleted\n'
    wait_for(lambda: lab.pods() == [], timeout=60)
    networks = os.path.join(lab.node_dirs("n1").cni_data_dir, "networks", "cbr0")
    assert not os.path.exists(os.path.join(networks, ip))


def test_a_host_port_is_reached_from_another_node() -> None:
    """`podnet lab pod run web --node n1 --port 8080:80/tcp`: a pod on n2 reaches web
    through n1's address and port 8080, until web is removed."""
    from tests.plugins.portmap._node import connect, serve, stop_server

    name = "h" + secrets.token_hex(3)
    podnet = [sys.executable, "-m", "podnet.cli.main", "lab", "--name", name]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*podnet, *args], capture_output=True, text=True, check=False)

    lab = Lab(name)
    try:
        up = run("up", "--nodes", "2")
        assert up.returncode == 0, up.stderr
        web = run("pod", "run", "web", "--node", "n1", "--port", "8080:80/tcp")
        assert web.returncode == 0, web.stderr
        bad = run("pod", "run", "bad", "--node", "n1", "--port", "80")
        assert bad.returncode != 0 and "HOST:CONTAINER" in bad.stderr
        pods = {p.sandbox.name: p.sandbox for p in lab.pods()}
        client = lab.pod_run("client", "n2").sandbox
        n1, n2 = str(lab.node("n1").ip), str(lab.node("n2").ip)
        server = serve(pods["web"].netns)
        try:
            # leaving the cluster network, the client is masqueraded to n2's address
            assert connect(client.netns, n1, 8080) == n2
            assert connect(client.netns, n1, 8081).startswith("error")
            assert run("pod", "rm", "web").returncode == 0
            assert connect(client.netns, n1, 8080).startswith("error")
        finally:
            stop_server(server)
    finally:
        down = run("down")
        assert down.returncode == 0, down.stderr


def test_a_pod_object_s_host_port_is_mapped_by_the_driver(shared_lab: Lab) -> None:
    """A Pod whose container asks for hostPort 8080: n1's sandbox driver passes it to the
    runtime as kubelet does (CRI port_mappings / portMappings), and n2's pods reach it."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    from tests.plugins.portmap._node import connect, serve, stop_server

    lab = shared_lab
    container = {
        "name": "web",
        "image": "registry.k8s.io/pause:3.9",
        "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "TCP"}],
    }
    overrides = json.dumps({"spec": {"nodeName": "n1", "containers": [container]}})
    done = subprocess.run(
        ["kubectl", "--kubeconfig", lab.kubeconfig, "run", "web",
         "--image=registry.k8s.io/pause:3.9", f"--overrides={overrides}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    wait_for(lambda: any(p.sandbox.name == "web" and p.sandbox.ip for p in lab.pods()), 60)
    web = next(p.sandbox for p in lab.pods() if p.sandbox.name == "web")
    client = lab.pod_run("client", "n2").sandbox
    server = serve(web.netns)
    try:
        assert connect(client.netns, str(lab.node("n1").ip), 8080) == str(lab.node("n2").ip)
    finally:
        stop_server(server)

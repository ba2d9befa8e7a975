"""podnet on a lab whose nodes each run their own containerd and their own podnet agent.

The agent installs podnet's executables and the flannel conflist in the node's dirs;
containerd (bin_dir/conf_dir = those dirs) runs them for every RunPodSandbox the tests
send over CRI, as kubelet would. One lab serves the whole module (its start is the
expensive part); every test leaves it without pods.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from ipaddress import ip_address, ip_network

import pytest

from podnet.cri import CRIError
from podnet.lab import Endpoint, Lab, LabError, LabPod, lab_namespaces, matrix
from podnet.netlink import delete_netns, run_in_netns
from podnet.plugins import CONFLIST_NAME
from podnet.runtime import CNI, DEFAULT_CACHE_DIR, ProcessExec, scan_conf_dir
from tests.e2e.nodes import e2e_unavailable, forget_sandbox, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.root]

NETWORK = "cbr0"
GC_INTERVAL = 0.5
# Longer than a RunPodSandbox takes from ADD to the sandbox being listed, so the agents'
# GC never takes a pod being created for a forgotten one; short, so the test is quick.
GC_GRACE = 5.0


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    reasons = e2e_unavailable()
    if reasons:
        pytest.skip("containerd cannot run pods here: " + "; ".join(reasons))
    # A short root: containerd's socket path must fit in a unix socket address.
    root = tempfile.mkdtemp(prefix="pn-e2e-")
    netns_dir = os.path.join(root, "netns")
    os.makedirs(netns_dir)
    name = "c" + os.urandom(3).hex()
    lab = Lab(name, root=os.path.join(root, "labs"), netns_dir=netns_dir)
    try:
        # Dual-stack, so every test here also runs with an IPv6 address beside the IPv4
        # one (the reservations and pod IPs they check are the IPv4 ones, the CRI pod IP).
        lab.up(2, runtime="containerd", gc_interval=GC_INTERVAL, gc_grace=GC_GRACE, dual_stack=True)
        yield lab
    finally:
        try:
            lab.down()
        finally:
            assert lab_namespaces(name, netns_dir=netns_dir) == []
            for directory in (lab.dir, os.path.dirname(lab.dir), netns_dir, root):
                with contextlib.suppress(FileNotFoundError):
                    os.rmdir(directory)  # empty by now: anything left fails the module


@pytest.fixture
def clean(lab: Lab) -> Iterator[Lab]:
    """The lab for one test; whatever pods the test leaves are removed (CNI DEL)."""
    try:
        yield lab
    finally:
        for pod in lab.pod_objects():
            lab.pod_rm(pod["metadata"]["name"], pod["metadata"]["namespace"])
        for left in lab.pods():  # sandboxes a test started without a Pod
            lab.node_runtime.remove_pod(left.node, left.sandbox)


def pod_cidrs(lab: Lab) -> dict[str, str]:
    return {node.name: node.pod_cidr for node in lab.nodes()}


def reservations(lab: Lab, node: str) -> dict[str, str]:
    """host-local's reservations on `node`: address -> "containerID\\r\\nifname"."""
    directory = os.path.join(lab.node_dirs(node).cni_data_dir, "networks", NETWORK)
    found = {}
    for entry in os.listdir(directory) if os.path.isdir(directory) else []:
        if entry[0].isdigit():
            with open(os.path.join(directory, entry), newline="") as handle:
                found[entry] = handle.read()
    return found


def footprint(lab: Lab, pod: LabPod) -> dict[str, bool]:
    """Which of the files a pod's network leaves exist: host-local's reservation,
    flannel's saved delegate config and containerd's cached results of eth0 and lo
    (libcni's cache, which containerd 1.6 keeps in /var/lib/cni whatever its state dir)."""
    d = lab.node_dirs(pod.node)
    reserved = reservations(lab, pod.node).get(pod.sandbox.ip)
    eth0, lo = cache_files(pod)
    return {
        "reservation": reserved == f"{pod.sandbox.id}\r\neth0",
        "flannel": os.path.exists(os.path.join(d.cni_data_dir, "flannel", pod.sandbox.id)),
        "cache": os.path.exists(eth0),
        "cache lo": os.path.exists(lo),
    }


def cache_files(pod: LabPod) -> tuple[str, str]:
    results = os.path.join(DEFAULT_CACHE_DIR, "results")
    return (
        os.path.join(results, f"{NETWORK}-{pod.sandbox.id}-eth0"),
        os.path.join(results, f"cni-loopback-{pod.sandbox.id}-lo"),
    )


def endpoints(pods: list[LabPod]) -> list[Endpoint]:
    return [Endpoint(p.sandbox.name, p.node, p.sandbox.netns, p.sandbox.ip) for p in pods]


ALL = {"reservation": True, "flannel": True, "cache": True, "cache lo": True}
NONE = dict.fromkeys(ALL, False)


def test_pods_on_two_nodes_get_their_node_addresses_and_reach_each_other(clean: Lab) -> None:
    lab = clean
    # Each node has its own containerd and its own agent.
    pids = {lab.containerd(n).pid for n in lab.node_names()}
    assert len(pids) == 2 and None not in pids
    assert all(lab.process_alive(f"agent-{n}") for n in lab.node_names())
    assert all(lab.network_ready(n) for n in lab.node_names())
    cidrs = pod_cidrs(lab)
    assert len(set(cidrs.values())) == 2

    pods = [lab.pod_run(f"web-{i}-{node}", node) for node in ("n1", "n2") for i in range(2)]
    for pod in pods:
        assert ip_address(pod.sandbox.ip) in ip_network(cidrs[pod.node]), pod
        assert pod.sandbox.state == "ready"
        assert pod.sandbox.netns.startswith(lab.containerd(pod.node).pod_netns_dir + "/")
        assert footprint(lab, pod) == ALL
    assert len({pod.sandbox.ip for pod in pods}) == 4
    for node in ("n1", "n2"):  # exactly these reservations on each node
        mine = {p.sandbox.ip for p in pods if p.node == node}
        assert set(reservations(lab, node)) == mine
    assert [pair for pair, ok in matrix(endpoints(pods)).items() if not ok] == []

    for pod in pods:  # StopPodSandbox twice, then RemovePodSandbox, as kubelet does
        with lab.containerd(pod.node).client() as cri:
            cri.stop_pod_sandbox(pod.sandbox.id)  # CNI DEL: everything goes right here
            assert footprint(lab, pod) == NONE
            assert cri.pod_sandbox_status(pod.sandbox.id).state == "SANDBOX_NOTREADY"
            cri.stop_pod_sandbox(pod.sandbox.id)  # DEL again, with an empty netns
            cri.remove_pod_sandbox(pod.sandbox.id)
        assert footprint(lab, pod) == NONE
    assert lab.pods() == []
    assert reservations(lab, "n1") == {} and reservations(lab, "n2") == {}


def test_dual_stack_pods_through_containerd_report_both_addresses_and_reach_each_other(
    clean: Lab,
) -> None:
    """containerd gives each pod its IPv4 address as the pod IP and the IPv6 one in
    additional_ips; the node's driver writes both into status.podIPs; pods on the two
    nodes reach each other over IPv6 too."""
    lab = clean
    cidrs = {node.name: node.pod_cidrs for node in lab.nodes()}
    pods = [lab.pod_run(f"dual-{node}", node) for node in ("n1", "n2")]
    for pod in pods:
        v4, v6 = cidrs[pod.node]
        (extra,) = pod.sandbox.additional_ips
        assert ip_address(pod.sandbox.ip) in ip_network(v4)
        assert ip_address(extra) in ip_network(v6)
    by_name = {p["metadata"]["name"]: p for p in lab.pod_objects()}
    for pod in pods:
        status = by_name[pod.sandbox.name]["status"]
        assert [i["ip"] for i in status["podIPs"]] == [pod.sandbox.ip, *pod.sandbox.additional_ips]
        assert status["podIP"] == pod.sandbox.ip
    ipv6 = [
        Endpoint(p.sandbox.name, p.node, p.sandbox.netns, p.sandbox.additional_ips[0]) for p in pods
    ]
    assert [pair for pair, ok in matrix(ipv6).items() if not ok] == []


def test_a_host_port_through_containerd_is_reached_from_the_other_node(clean: Lab) -> None:
    """containerd hands the sandbox's port mappings to the conflist's portmap (podnet's,
    installed by the agent) on ADD and DEL."""
    from tests.plugins.portmap._node import connect, serve, stop_server

    lab = clean
    ports = [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]
    web = lab.pod_run("web", "n1", ports=ports).sandbox
    client = lab.pod_run("client", "n2").sandbox
    n1, n2 = str(lab.node("n1").ip), str(lab.node("n2").ip)
    server = serve(web.netns)
    try:
        assert connect(client.netns, n1, 8080) == n2  # masqueraded leaving the cluster net
        lab.pod_rm("web")
        assert connect(client.netns, n1, 8080).startswith("error")
    finally:
        stop_server(server)


def test_network_ready_follows_the_conflist_the_agent_installs(clean: Lab) -> None:
    lab = clean
    d = lab.node_dirs("n2")
    conflist = os.path.join(d.conf_dir, CONFLIST_NAME)
    with open(conflist) as handle:
        installed = json.load(handle)
    # The agent's conflist: flannel with this node's subnet.env and data dirs, at the
    # newest CNI version containerd 1.6's libcni reads.
    assert installed["cniVersion"] == "1.0.0"
    assert installed["plugins"][0]["type"] == "flannel"
    assert installed["plugins"][0]["subnetFile"] == d.subnet_file
    assert installed["plugins"][1] == {"type": "portmap", "capabilities": {"portMappings": True}}

    os.unlink(conflist)  # gone: containerd reloads its conf dir and is not ready
    assert wait_until(lambda: not lab.network_ready("n2"), timeout=10)
    with pytest.raises(LabError, match="RunPodSandbox"):
        lab.pod_run("too-early", "n2")

    lab.restart_agent("n2")  # the agent installs it again once it is ready
    assert wait_until(lambda: lab.agent_ready("n2"), timeout=20)
    assert wait_until(lambda: lab.network_ready("n2"), timeout=10)
    pod = lab.pod_run("on-time", "n2")
    assert ip_address(pod.sandbox.ip) in ip_network(pod_cidrs(lab)["n2"])

    # containerd 1.6 never calls STATUS; the chain answers it at 1.1.0 all the same.
    network = scan_conf_dir(d.conf_dir).default()
    cni = CNI((d.bin_dir,), exec_=ProcessExec())
    statuses = run_in_netns(
        lab.node("n2").netns, lambda: cni.status(replace(network, cni_version="1.1.0"))
    )
    assert [(s.plugin_type, s.error) for s in statuses] == [("flannel", None), ("portmap", None)]


def test_a_containerd_restart_loses_and_duplicates_no_address(clean: Lab) -> None:
    lab = clean
    before = [lab.pod_run(f"before-{i}", "n1") for i in range(2)]
    peer = lab.pod_run("peer", "n2")
    containerd = lab.containerd("n1")
    old_pid = containerd.pid

    containerd.stop(signal.SIGKILL)  # a crash; kubelet would restart it, as we do below
    # Meanwhile the agent's GC cannot list the sandboxes, and so frees nothing.
    with open(lab.log_path("agent-n1")) as handle:
        handle.seek(0, os.SEEK_END)
        assert wait_until(lambda: "GC skipped: cannot list" in handle.read(), timeout=10)
    assert set(reservations(lab, "n1")) == {p.sandbox.ip for p in before}
    containerd.start()

    assert lab.containerd("n1").pid not in (None, old_pid)
    assert wait_until(lambda: lab.network_ready("n1"), timeout=10)
    after_restart = {p.sandbox.id: p.sandbox for p in lab.pods() if p.node == "n1"}
    for pod in before:  # same sandbox, same address, same netns, still ready
        assert after_restart[pod.sandbox.id] == pod.sandbox
    assert set(reservations(lab, "n1")) == {p.sandbox.ip for p in before}

    after = lab.pod_run("after", "n1")
    assert after.sandbox.ip not in {p.sandbox.ip for p in before}
    assert set(reservations(lab, "n1")) == {p.sandbox.ip for p in [*before, after]}
    assert all(matrix(endpoints([after, before[0], peer])).values())
    for pod in [*before, after]:
        lab.pod_rm(pod.sandbox.name)
        assert footprint(lab, pod) == NONE
    assert reservations(lab, "n1") == {}


def test_a_netns_removed_behind_containerds_back_still_frees_everything(clean: Lab) -> None:
    """The netns of a running sandbox is removed under containerd, then the pod goes:
    containerd 1.6 runs DEL with CNI_NETNS="" and podnet's chain still releases all."""
    lab = clean
    pod = lab.pod_run("lost-netns", "n1")
    delete_netns(pod.sandbox.netns)
    lab.pod_rm(pod.sandbox.name)
    assert footprint(lab, pod) == NONE
    assert reservations(lab, "n1") == {}


def test_the_agent_frees_what_a_forgotten_sandbox_left_behind(clean: Lab) -> None:
    """The runtime loses a sandbox without CNI DEL: nothing will ever DEL it, and with
    the reference stack its address stays reserved for good (see test_containerd.py).
    The node's agent lists the runtime's sandboxes over CRI and frees it."""
    lab = clean
    kept, lost = lab.pod_run("kept", "n1"), lab.pod_run("lost", "n1")
    other = lab.pod_run("other-node", "n2")
    containerd = lab.containerd("n1")
    try:
        forget_sandbox(containerd, lost.sandbox.id, restart=lambda: lab.restart_containerd("n1"))
        with containerd.client() as cri:
            assert {s.id for s in cri.list_pod_sandbox()} == {kept.sandbox.id}
            with pytest.raises(CRIError):
                cri.pod_sandbox_status(lost.sandbox.id)

        started = time.monotonic()
        assert wait_until(lambda: footprint(lab, lost) == NONE, timeout=GC_GRACE + 10)
        waited = time.monotonic() - started
        # The pod that runtime still lists, and the other node's pod, keep everything;
        # n1's GC leaves alone n2's entries in the cache dir both containerds share.
        assert footprint(lab, kept) == ALL and footprint(lab, other) == ALL
        assert set(reservations(lab, "n1")) == {kept.sandbox.ip}
        released = f"GC {NETWORK}: released {lost.sandbox.ip} (reserved for"

        def logged() -> bool:
            with open(lab.log_path("agent-n1")) as handle:
                return released in handle.read()

        # The round logs what it freed once it is over: after the footprint is gone.
        assert wait_until(logged, timeout=10), released
        print(f"freed {waited:.1f}s after the runtime forgot the sandbox")
        assert all(matrix(endpoints([kept, other])).values())
    finally:
        for path in cache_files(lost):  # left only if the test failed: our debris
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def test_kubectl_reads_the_containerd_lab(lab: Lab) -> None:
    """The lab's API server is the same whatever runs the pods."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    done = subprocess.run(
        ["kubectl", "--kubeconfig", lab.kubeconfig, "get", "no", "n2", "-o", "json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["spec"]["podCIDR"] == pod_cidrs(lab)["n2"] != ""


def test_doctor_on_a_containerd_node_owns_reservations_by_its_cri_sandboxes(clean: Lab) -> None:
    clean.pod_run("doc", "n1")
    done = subprocess.run(
        clean.doctor_argv("n1", "-o", "json"), capture_output=True, text=True, timeout=60
    )
    report = json.loads(done.stdout)
    wrong = [f for f in report["findings"] if f["status"] not in ("ok", "skipped")]
    reservations = next(f for f in report["findings"] if f["check"] == "reservations")
    socket = clean.containerd("n1").socket
    assert (done.returncode, wrong) == (0, [])
    assert reservations["evidence"] == [f"owners: CRI {socket}"]
    # One pod of this dual-stack lab holds two reservations, one per family.
    assert reservations["message"].startswith("2 reservation(s)")

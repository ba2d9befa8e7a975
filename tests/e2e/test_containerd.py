"""Pods under a real containerd, driven over CRI v1 the way kubelet drives it.

containerd runs inside a lab node's netns and execs the CNI plugins of the `plugins`
parameter (reference or podnet) for the node's bridge + host-local conflist.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess

import pytest

from podnet.cri import CRIError
from podnet.lab import mounts_under, shim_pids
from podnet.netlink import delete_netns
from tests.e2e.nodes import NETWORK_NAME, ip, ping, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.root]

SUBNET = "10.244.1.0/24"


def in_subnet(address: str, subnet: str = SUBNET) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(subnet)


def test_network_ready_only_once_the_conflist_exists(make_node) -> None:
    node = make_node(with_conflist=False)
    version = node.client.version()
    assert (version.runtime_name, version.runtime_api_version) == ("containerd", "v1")
    conditions = node.client.status()
    assert conditions["RuntimeReady"].status
    assert not conditions["NetworkReady"].status
    assert conditions["NetworkReady"].reason == "NetworkPluginNotReady"
    with pytest.raises(CRIError):
        node.run_pod("too-early")  # kubelet would not even try: the network is not ready

    node.write_conflist()  # what install-cni does once the agent has a lease
    assert wait_until(lambda: node.client.network_ready().status, timeout=10)
    assert in_subnet(node.run_pod("on-time").ip)


def test_pods_get_addresses_from_the_node_subnet_and_reach_each_other(make_node) -> None:
    node = make_node(subnet=SUBNET)
    pods = [node.run_pod(f"web-{index}") for index in range(3)]

    addresses = [pod.ip for pod in pods]
    assert all(in_subnet(address) for address in addresses), addresses
    assert len(set(addresses)) == 3
    assert "10.244.1.1" not in addresses  # the bridge's gateway address
    # host-local reserved exactly these, each for its sandbox (CNI_CONTAINERID).
    assert node.reservations() == {pod.ip: pod.sandbox_id for pod in pods}

    for pod in pods:
        status = node.client.pod_sandbox_status(pod.sandbox_id)
        assert (status.state, status.ip) == ("SANDBOX_READY", pod.ip)
        assert status.metadata.name == pod.name and status.metadata.uid == pod.uid
        # netns_mounts_under_state_dir: pod namespaces stay out of /run/netns.
        assert pod.netns_path.startswith(node.containerd.pod_netns_dir + "/")
        assert f"inet {pod.ip}/24" in ip_in_pod(pod.netns_path)
    listed = {sandbox.id: sandbox.state for sandbox in node.client.list_pod_sandbox()}
    assert listed == {pod.sandbox_id: "SANDBOX_READY" for pod in pods}

    assert ping(pods[0], pods[1].ip)
    assert ping(pods[2], pods[0].ip)
    assert ping(pods[1], "10.244.1.1")  # the node end of the bridge


def test_stop_twice_then_remove_frees_the_address(make_node) -> None:
    node = make_node()
    keep, go = node.run_pod("keep"), node.run_pod("go")
    assert set(node.reservations()) == {keep.ip, go.ip}

    node.client.stop_pod_sandbox(go.sandbox_id)  # CNI DEL with the netns
    assert set(node.reservations()) == {keep.ip}
    assert node.client.pod_sandbox_status(go.sandbox_id).state == "SANDBOX_NOTREADY"
    assert not os.path.exists(go.netns_path)
    node.client.stop_pod_sandbox(go.sandbox_id)  # kubelet again: DEL with an empty netns
    node.client.remove_pod_sandbox(go.sandbox_id)  # stops once more internally
    assert node.reservations() == {keep.ip: keep.sandbox_id}
    assert [sandbox.id for sandbox in node.client.list_pod_sandbox()] == [keep.sandbox_id]
    with pytest.raises(CRIError):
        node.client.pod_sandbox_status(go.sandbox_id)

    # The freed address is not handed out again right away: host-local goes round-robin.
    again = node.run_pod("again")
    assert again.ip not in (keep.ip, go.ip)
    assert ping(again, keep.ip)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_containerd_restart_loses_and_duplicates_no_address(make_node, sig) -> None:
    node = make_node()
    before = [node.run_pod(f"before-{index}") for index in range(2)]
    old_pid = node.containerd.pid
    shims = set(shim_pids(node.containerd.socket))
    assert shims, "each sandbox runs under a shim of this containerd"

    node.restart(sig)

    assert node.containerd.pid != old_pid
    assert set(shim_pids(node.containerd.socket)) == shims, "pods survive a runtime restart"
    for pod in before:
        status = node.client.pod_sandbox_status(pod.sandbox_id)
        assert (status.state, status.ip, status.netns_path) == (
            "SANDBOX_READY",
            pod.ip,
            pod.netns_path,
        )
    assert node.reservations() == {pod.ip: pod.sandbox_id for pod in before}

    after = node.run_pod("after")
    assert after.ip not in {pod.ip for pod in before}
    assert node.reservations() == {pod.ip: pod.sandbox_id for pod in [*before, after]}
    assert ping(after, before[0].ip)

    for pod in [*before, after]:
        node.remove_pod(pod)
    assert node.reservations() == {}
    assert node.client.list_pod_sandbox() == []
    # Nothing of the pods is left mounted: rootfs, shm, netns.
    assert mounts_under(node.containerd.state) == []


def test_a_netns_removed_behind_the_runtimes_back_still_frees_the_address(make_node) -> None:
    """containerd 1.6 runs DEL with CNI_NETNS="" when the pod netns is gone: the plugins
    must still release the address (host-local by container ID)."""
    node = make_node()
    pod = node.run_pod("lost-netns")
    delete_netns(pod.netns_path)
    node.remove_pod(pod)
    assert node.reservations() == {}
    assert node.client.list_pod_sandbox() == []


def test_a_sandbox_the_runtime_forgets_leaves_a_reservation_only_gc_can_free(
    make_node, plugins
) -> None:
    """When the runtime loses a sandbox without DEL, nothing ever calls DEL for it: its
    reservation stays. A GC that takes the valid set from ListPodSandbox finds it (the
    podnet agent's, in test_lab.py); with the reference stack nothing ever frees it."""
    node = make_node()
    kept, lost = node.run_pod("kept"), node.run_pod("lost")
    try:
        node.forget_sandbox(lost)

        valid = {sandbox.id for sandbox in node.client.list_pod_sandbox()}
        assert valid == {kept.sandbox_id}
        stale = {ip: owner for ip, owner in node.reservations().items() if owner not in valid}
        assert stale == {lost.ip: lost.sandbox_id}
        # The leaked address is not handed out again while it stays reserved, and more
        # pods coming and going, or another runtime restart, change nothing.
        fresh = node.run_pod("fresh")
        assert fresh.ip not in (kept.ip, lost.ip)
        node.remove_pod(fresh)
        node.restart(signal.SIGTERM)
        assert node.reservations()[lost.ip] == lost.sandbox_id
        if plugins.name == "reference":
            # Nothing could ever ask the reference host-local to collect it: it has no GC
            # verb (that came with CNI 1.1.0), and containerd 1.6 sends none anyway.
            versions = reference_versions("host-local")
            assert "1.1.0" not in versions and "1.0.0" in versions
    finally:
        for network in ("cbr0", "cni-loopback"):  # containerd's cache of the lost pod
            ifname = "lo" if network == "cni-loopback" else "eth0"
            path = f"/var/lib/cni/results/{network}-{lost.sandbox_id}-{ifname}"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def reference_versions(plugin_type: str) -> list[str]:
    result = subprocess.run(
        [f"/usr/lib/cni/{plugin_type}"],
        env={"CNI_COMMAND": "VERSION"},
        input=b'{"cniVersion": "1.0.0"}',
        capture_output=True,
        check=True,
    )
    return list(json.loads(result.stdout)["supportedVersions"])


def test_pods_on_two_nodes_reach_each_other_over_host_gw_routes(make_node) -> None:
    node1 = make_node(subnet="10.244.1.0/24")
    node2 = make_node(subnet="10.244.2.0/24")
    # The underlay: one veth between the two node namespaces, and host-gw style routes to
    # the other node's podCIDR through its underlay address (what flannel's host-gw does).
    ip(node1.name, "link", "add", "ul0", "type", "veth", "peer", "name", "ul0", "netns", node2.name)
    for node, address in ((node1, "192.0.2.1/24"), (node2, "192.0.2.2/24")):
        ip(node.name, "addr", "add", address, "dev", "ul0")
        ip(node.name, "link", "set", "ul0", "up")
        node.enable_forwarding()
    ip(node1.name, "route", "add", "10.244.2.0/24", "via", "192.0.2.2")
    ip(node2.name, "route", "add", "10.244.1.0/24", "via", "192.0.2.1")

    pod1 = node1.run_pod("client")
    pod2 = node2.run_pod("server")
    assert in_subnet(pod1.ip, "10.244.1.0/24") and in_subnet(pod2.ip, "10.244.2.0/24")

    assert ping(pod1, pod2.ip)
    assert ping(pod2, pod1.ip)
    node1.remove_pod(pod1)
    node2.remove_pod(pod2)
    assert node1.reservations() == {} and node2.reservations() == {}


def test_a_dual_stack_pod_has_additional_ips_in_its_sandbox_status(make_node) -> None:
    """A CNI result with an IPv4 and an IPv6 address on eth0: containerd's
    PodSandboxStatus has the IPv4 one as the pod IP and the IPv6 one in additional_ips
    (what kubelet turns into status.podIPs); pods reach each other over IPv6."""
    node = make_node(subnet=SUBNET, subnet6="fd00:10:244:1::/64")
    pods = [node.run_pod(f"dual-{index}") for index in range(2)]
    for pod in pods:
        assert in_subnet(pod.ip)
        (extra,) = pod.additional_ips
        assert ipaddress.ip_address(extra) in ipaddress.ip_network("fd00:10:244:1::/64")
        status = node.client.pod_sandbox_status(pod.sandbox_id)
        assert (status.ip, status.additional_ips) == (pod.ip, (extra,))
    assert ping(pods[0], pods[1].additional_ips[0])
    for pod in list(pods):
        node.remove_pod(pod)
    assert node.reservations() == {}
    left = os.listdir(os.path.join(node.ipam_dir, NETWORK_NAME))
    assert [name for name in left if name.startswith("fd00")] == []


def ip_in_pod(netns_path: str) -> str:
    return subprocess.run(
        ["nsenter", f"--net={netns_path}", "ip", "-4", "addr", "show", "eth0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_cri_port_mappings_reach_portmap_until_the_sandbox_stops(make_node) -> None:
    """kubelet's hostPorts: CRI port_mappings, which containerd hands to portmap as
    runtimeConfig portMappings on ADD and again on DEL (reference and podnet alike)."""
    from tests.plugins.portmap._node import connect, serve, stop_server

    node = make_node(portmap=True)
    web = node.run_pod("web", ports=[{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}])
    client = node.run_pod("client")
    server = serve(web.netns_path)
    try:
        # from another pod (masqueraded: same subnet) and from the node, to the node's
        # address on cni0
        assert connect(client.netns_path, "10.244.1.1", 8080) == "10.244.1.1"
        assert connect(node.netns, "10.244.1.1", 8080) == "10.244.1.1"
        assert connect(client.netns_path, "10.244.1.1", 8081).startswith("error")
        node.client.stop_pod_sandbox(web.sandbox_id)  # CNI DEL, with the port mappings
        assert connect(client.netns_path, "10.244.1.1", 8080).startswith("error")
    finally:
        stop_server(server)
    node.remove_pod(web)

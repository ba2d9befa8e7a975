"""bridge DEL in the agent: the pod is cut off and its address released before the answer,
the veth destroyed after it; a request for the same interface waits for that."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from bench.cni import start_agent
from podnet.cni import Host, HostState, dispatch, run_after_answer
from podnet.netlink import find_link, get_link_by_index, open_rtnl, run_in_netns
from podnet.plugins import load_plugin
from podnet.plugins._install import install_executables
from tests.plugins.main._support import (
    Cni,
    bridge_conf,
    node_veths,
    node_veths_once_settled,
    ping,
    reservations,
    with_prev,
)

pytestmark = pytest.mark.root

BRIDGE = load_plugin("bridge")
T = TypeVar("T")


def request_env(cni_bin: Path, command: str, netns: str, container_id: str) -> dict[str, str]:
    return {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": netns,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": str(cni_bin / "bin"),  # podnet's host-local: delegated in-process
        "PATH": os.environ.get("PATH", ""),
    }


def in_agent_thread(node: str, call: Callable[[], T]) -> T:
    """Run `call` as an agent worker runs a request: on a thread inside the node."""
    return run_in_netns(node, call)


def run_with(state: HostState, environ: dict[str, str], stdin: bytes) -> tuple[int, bytes]:
    """One request as an agent worker runs it: a deferring host over the agent's state;
    what it leaves for after the answer is run at once."""
    with Host(state, defers=True) as host:
        answer = dispatch(BRIDGE, environ, stdin, host)
        run_after_answer(host.take_after_answer())
        return answer


def pod_link(pod: str) -> tuple[bool, bool] | None:
    """(admin up, peer carrier) of the pod's eth0, None when it is gone."""
    with open_rtnl(pod) as nl:
        link = find_link(nl, "eth0")
        return None if link is None else (link.admin_up, link.oper_state == "UP")


def test_del_cuts_the_pod_off_answers_then_destroys(
    cni_bin: Path, node_netns: str, pod_netns: Callable[[], str], tmp_path: Path
) -> None:
    pod = pod_netns()
    conf = bridge_conf("1.0.0", tmp_path / "ipam")
    stdin = json.dumps(conf).encode()

    # As in the agent: one state, each worker a deferring host over it.
    state = HostState()
    code, out = in_agent_thread(
        node_netns, lambda: run_with(state, request_env(cni_bin, "ADD", pod, "c1"), stdin)
    )
    assert code == 0, out
    first_ip = json.loads(out)["ips"][0]["address"].split("/")[0]
    assert pod_link(pod) == (True, True)

    def delete() -> tuple[tuple[int, bytes], list[Callable[[], None]]]:
        del_stdin = json.dumps(with_prev(conf, json.loads(out))).encode()
        with Host(state, defers=True) as host:
            answer = dispatch(BRIDGE, request_env(cni_bin, "DEL", pod, "c1"), del_stdin, host)
            return answer, host.take_after_answer()

    (code, del_out), later = in_agent_thread(node_netns, delete)
    assert (code, del_out) == (0, b"")
    # The answer: the address is free and the pod is cut off, its veth not destroyed yet.
    assert reservations(tmp_path / "ipam") == []
    assert len(later) == 1
    assert pod_link(pod) == (False, False)
    with open_rtnl(pod) as nl:
        peer = find_link(nl, "eth0")
    assert peer is not None
    with open_rtnl(node_netns) as nl:
        host_end = get_link_by_index(nl, peer.peer_index)
    assert host_end.oper_state != "UP"  # the bridge no longer forwards to that port

    # An ADD for the same pod interface waits for the destroy, then succeeds.
    second: list[tuple[int, bytes]] = []
    readd = threading.Thread(
        target=lambda: second.append(
            in_agent_thread(
                node_netns,
                lambda: run_with(state, request_env(cni_bin, "ADD", pod, "c2"), stdin),
            )
        )
    )
    readd.start()
    readd.join(0.3)
    assert readd.is_alive(), "the ADD did not wait for the pending destroy"
    run_after_answer(later)
    readd.join(10)
    assert second and second[0][0] == 0, second
    assert pod_link(pod) == (True, True)
    second_ip = json.loads(second[0][1])["ips"][0]["address"].split("/")[0]
    assert reservations(tmp_path / "ipam") == [second_ip] != [first_ip]  # round-robin
    assert len(node_veths(node_netns)) == 1


def test_del_with_a_host_that_does_not_defer_destroys_before_answering(
    cni_bin: Path, node_netns: str, pod_netns: Callable[[], str], tmp_path: Path
) -> None:
    """An executable's host: the veth is gone when DEL answers, nothing is left for later."""
    pod = pod_netns()
    conf = bridge_conf("1.0.0", tmp_path / "ipam")
    state = HostState()
    code, out = in_agent_thread(
        node_netns,
        lambda: run_with(state, request_env(cni_bin, "ADD", pod, "c1"), json.dumps(conf).encode()),
    )
    assert code == 0, out

    def delete() -> tuple[tuple[int, bytes], list[Callable[[], None]]]:
        del_stdin = json.dumps(with_prev(conf, json.loads(out))).encode()
        with Host(state) as host:
            answer = dispatch(BRIDGE, request_env(cni_bin, "DEL", pod, "c1"), del_stdin, host)
            return answer, host.take_after_answer()

    (code, del_out), later = in_agent_thread(node_netns, delete)
    assert (code, del_out, later) == (0, b"", [])
    assert pod_link(pod) is None
    assert reservations(tmp_path / "ipam") == []
    assert node_veths(node_netns) == []


@pytest.fixture
def agent_cni(
    cni_bin: Path, node_netns: str, tmp_path: Path
) -> Iterator[tuple[Cni, subprocess.Popen[bytes]]]:
    """A real agent serving CNI inside the node, and a runner of executables pointed at it."""
    socket_path = str(tmp_path / "agent.sock")
    root = tmp_path / "agent-cni"
    install_executables(str(root / "bin"), agent_socket=socket_path)
    # started from a thread inside the node: the agent is born in that namespace
    agent = run_in_netns(node_netns, lambda: start_agent(socket_path, str(tmp_path / "agent.log")))
    try:
        yield Cni(root=root, node=node_netns, data_dir=tmp_path / "ipam"), agent
    finally:
        agent.terminate()
        agent.wait(10)


def test_del_then_add_of_one_pod_through_the_agent(
    agent_cni: tuple[Cni, subprocess.Popen[bytes]],
    node_netns: str,
    pod_netns: Callable[[], str],
    tmp_path: Path,
) -> None:
    cni, agent = agent_cni
    pods = [pod_netns() for _ in range(3)]
    conf = bridge_conf("1.0.0", tmp_path / "ipam")

    owners = {pod: f"{i}" for i, pod in enumerate(pods)}
    results = {pod: cni.add(conf, netns=pod, container_id=owners[pod]) for pod in pods}
    for round_ in range(10):  # the runtime tears a pod down and sets it up again at once
        for pod in pods:
            prev = with_prev(conf, results[pod])
            deleted = cni.run("DEL", prev, netns=pod, container_id=owners[pod])
            assert deleted.ok, deleted.out
            owners[pod] = f"{owners[pod]}-{round_}"
            results[pod] = cni.add(conf, netns=pod, container_id=owners[pod])
    for pod in pods:
        gateway = results[pod]["ips"][0]["gateway"]
        assert ping(pod, gateway)
    assert len(reservations(tmp_path / "ipam")) == len(pods)

    for pod, result in results.items():
        prev = with_prev(conf, result)
        assert cni.run("DEL", prev, netns=pod, container_id=owners[pod]).ok
    assert reservations(tmp_path / "ipam") == []
    deadline = time.monotonic() + 10  # destroyed after the answers: wait for what must come
    while node_veths(node_netns) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node_veths(node_netns) == []
    assert all(pod_link(pod) is None for pod in pods)
    assert agent.poll() is None


def start_agent_with_timeout(socket_path: str, log: str, timeout: float) -> subprocess.Popen[bytes]:
    with open(log, "ab") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "podnet.cli.main", "agent", "serve-cni"]
            + ["--socket", socket_path, "--request-timeout", str(timeout)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    deadline = time.monotonic() + 20
    while not os.path.exists(socket_path):
        assert proc.poll() is None and time.monotonic() < deadline, f"agent did not start: {log}"
        time.sleep(0.02)
    return proc


def test_a_del_that_comes_before_a_late_add_finishes_undoes_it(
    cni_bin: Path, node_netns: str, pod_netns: Callable[[], str], tmp_path: Path
) -> None:
    """The agent's watchdog answers a slow ADD "try again" (code 11) while it still runs;
    the runtime then sends DEL. The DEL waits for the ADD (one lock per attachment) and
    undoes it whole: no reservation and no veth are left behind (issue 13)."""
    if shutil.which("flock") is None:
        pytest.skip("util-linux flock is not installed")
    pod = pod_netns()
    conf = bridge_conf("1.0.0", tmp_path / "ipam")
    socket_path = str(tmp_path / "agent.sock")
    root = tmp_path / "agent-cni"
    install_executables(str(root / "bin"), agent_socket=socket_path)
    cni = Cni(root=root, node=node_netns, data_dir=tmp_path / "ipam")
    network_dir = tmp_path / "ipam" / "cbr0"
    network_dir.mkdir(parents=True)
    (network_dir / "lock").touch()
    # host-local's lock held by another process: the ADD is slow inside IPAM
    holder = subprocess.Popen(
        ["flock", str(network_dir / "lock"), "sleep", "60"], start_new_session=True
    )
    agent = run_in_netns(
        node_netns,
        lambda: start_agent_with_timeout(socket_path, str(tmp_path / "agent.log"), 1.5),
    )
    try:
        added = cni.run("ADD", conf, netns=pod, container_id="late")
        assert added.code == 1 and added.out is not None and added.out["code"] == 11, added.out
        deleting: list[int] = []
        first_del = threading.Thread(
            target=lambda: deleting.append(
                cni.run("DEL", conf, netns=pod, container_id="late").code
            )
        )
        first_del.start()
        time.sleep(0.3)
        os.killpg(holder.pid, signal.SIGKILL)  # the ADD goes on, then the DEL
        holder.wait(10)
        first_del.join(30)
        deadline = time.monotonic() + 30
        while deleting != [0]:  # the runtime retries a DEL answered "try again"
            assert time.monotonic() < deadline, "DEL never succeeded"
            deleting = [cni.run("DEL", conf, netns=pod, container_id="late").code]
        assert reservations(tmp_path / "ipam") == []
        assert node_veths_once_settled(node_netns) == []
        assert pod_link(pod) is None
        assert agent.poll() is None
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
            holder.wait(10)
        agent.terminate()
        agent.wait(10)

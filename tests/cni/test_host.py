"""The host a verb runs with: work left for after the answer (deferred only by a host that
defers), the warm netlink handle, and the state shared by hosts over one HostState."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from podnet.cni import Host, HostState, Plugin, Request, Result, dispatch, run_after_answer
from podnet.netlink import (
    Rtnl,
    create_bridge,
    create_netns,
    delete_netns,
    find_link,
    run_in_netns,
)


def test_a_default_host_runs_work_at_once() -> None:
    done: list[str] = []
    host = Host()
    assert not host.can_defer
    host.after_answer(lambda: done.append("now"))
    assert done == ["now"]
    assert host.take_after_answer() == []


def test_a_deferring_host_keeps_work_until_taken_then_starts_afresh() -> None:
    done: list[str] = []
    host = Host(defers=True)
    assert host.can_defer
    host.after_answer(lambda: done.append("a"))
    host.after_answer(lambda: done.append("b"))
    assert done == []
    later = host.take_after_answer()
    assert host.take_after_answer() == [], "taken once"
    run_after_answer(later)
    assert done == ["a", "b"]
    host.after_answer(lambda: done.append("c"))
    assert len(host.take_after_answer()) == 1


class Counter:
    def __init__(self) -> None:
        self.value = 0


def test_hosts_over_one_state_share_it_and_others_do_not() -> None:
    state = HostState()
    first, second = Host(state), Host(state, defers=True)
    first.state.get(Counter).value += 1
    assert second.state.get(Counter).value == 1
    assert Host().state.get(Counter).value == 0, "a host of its own starts empty"


def test_state_made_concurrently_is_made_once() -> None:
    state = HostState()
    seen: list[Counter] = []
    threads = [threading.Thread(target=lambda: seen.append(state.get(Counter))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len({id(counter) for counter in seen}) == 1


def test_dispatch_hands_the_verb_its_host_and_delegates_keep_it() -> None:
    """The host given to dispatch is the one the verb sees, also in a delegate's request;
    without one, each call gets a fresh default host."""
    seen: list[Host] = []

    def add(request: Request) -> Result:
        seen.append(request.host)
        seen.append(request.with_config("DEL", {"name": "x"}).host)
        request.host.after_answer(lambda: None)
        return Result()

    plugin = Plugin(name="probe", add=add, delete=lambda _: None)
    environ = {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "c1",
        "CNI_NETNS": "/proc/1/ns/net",  # not this thread's own (the skel refuses that)
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/nowhere",
        "CNI_NETNS_OVERRIDE": "1",
    }
    stdin = json.dumps({"cniVersion": "1.0.0", "name": "net"}).encode()
    host = Host(defers=True)
    code, out = dispatch(plugin, environ, stdin, host)
    assert code == 0, out
    assert seen == [host, host]
    assert len(host.take_after_answer()) == 1
    code, out = dispatch(plugin, environ, stdin)
    assert code == 0, out
    assert seen[2] is not host and seen[2] is seen[3]
    assert not seen[2].can_defer


def test_a_failing_piece_is_logged_and_the_rest_still_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log = tmp_path / "cni.log"
    monkeypatch.setenv("PODNET_LOG_FILE", str(log))
    done: list[str] = []

    def broken() -> None:
        raise RuntimeError("kernel said no")

    run_after_answer([broken, lambda: done.append("after")])
    assert done == ["after"]
    assert "work after the answer failed: RuntimeError: kernel said no" in log.read_text()


@pytest.fixture
def two_namespaces() -> Iterator[tuple[str, str]]:
    suffix = uuid.uuid4().hex[:8]
    node, pod = f"/var/run/netns/pn-host-node-{suffix}", f"/var/run/netns/pn-host-pod-{suffix}"
    create_netns(node)
    try:
        create_netns(pod)
        try:
            yield node, pod
        finally:
            delete_netns(pod)
    finally:
        delete_netns(node)


@pytest.mark.root
def test_the_node_handle_is_kept_per_host_and_namespace(two_namespaces: tuple[str, str]) -> None:
    node, pod = two_namespaces

    def in_node() -> None:
        with Host() as host, Host() as other_host:
            first = host.node_rtnl()
            assert host.node_rtnl() is first, "a host reuses its handle"
            create_bridge(first, "cni0")
            elsewhere = run_in_netns(pod, host.node_rtnl)
            assert elsewhere is not first, "in another namespace, another handle"
            assert find_link(elsewhere, "cni0") is None
            back = host.node_rtnl()
            assert find_link(back, "cni0") is not None, "back home, a handle for home"
            other: list[Rtnl] = []
            thread = threading.Thread(
                target=lambda: other.append(run_in_netns(node, other_host.node_rtnl))
            )
            thread.start()
            thread.join(10)
            assert other[0] is not back, "every host has its own"
        with pytest.raises(OSError):
            find_link(back, "cni0")  # closed with its host

    run_in_netns(node, in_node)


def test_work_beside_runs_on_the_helper_thread_and_hands_back_its_outcome() -> None:
    caller = threading.get_ident()
    with Host(helper=True) as host:
        pending = host.beside(threading.get_ident)
        assert pending.wait() not in (None, caller)

        def fails() -> None:
            raise ValueError("no addresses")

        with pytest.raises(ValueError, match="no addresses"):
            host.beside(fails).wait()
        assert host.beside(lambda: 7).wait() == 7  # the helper outlives a failure


def test_without_a_helper_work_beside_runs_at_once_in_the_caller() -> None:
    with Host() as host:
        ran: list[int] = []
        pending = host.beside(lambda: ran.append(threading.get_ident()))
        assert ran == [threading.get_ident()]  # before wait()
        assert pending.wait() is None

from __future__ import annotations

import errno
import os
import threading
import uuid

import pytest

from podnet.netlink import (
    NetnsError,
    NotANetns,
    _netns,
    create_netns,
    delete_netns,
    is_netns,
    netns_id,
    open_netns,
    read_sysctl,
    run_in_netns,
    write_sysctl,
)

pytestmark = pytest.mark.root


def test_create_enter_delete(tmp_path) -> None:
    path = str(tmp_path / f"pn-{uuid.uuid4().hex[:8]}")
    create_netns(path)
    try:
        assert is_netns(path)
        assert read_sysctl(path, "net.ipv4.ip_forward") == "0"
        write_sysctl(path, {"net.ipv4.ip_forward": 1})
        assert read_sysctl(path, "net.ipv4.ip_forward") == "1"
        with open("/proc/sys/net/ipv4/ip_forward") as handle:
            assert handle.read().strip() == "0", "the root namespace must stay untouched"
        with pytest.raises(FileExistsError):
            create_netns(path)
    finally:
        delete_netns(path)
    assert not os.path.exists(path)
    delete_netns(path)  # deleting twice is fine


def test_enter_missing_netns(tmp_path) -> None:
    with pytest.raises(NetnsError):
        read_sysctl(str(tmp_path / "nope"), "net.ipv4.ip_forward")


def test_a_namespace_is_known_by_identity_not_by_path(tmp_path) -> None:
    path = str(tmp_path / f"pn-{uuid.uuid4().hex[:8]}")
    create_netns(path)
    try:
        inside = run_in_netns(path, netns_id)  # the thread's own, while it is in there
        assert inside == netns_id(path) != netns_id()
        assert netns_id() == netns_id(
            f"/proc/{os.getpid()}/task/{threading.get_native_id()}/ns/net"
        )
    finally:
        delete_netns(path)
    with pytest.raises(FileNotFoundError):
        netns_id(path)


def own_namespace() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def test_run_in_netns_uses_the_calling_thread_and_always_comes_back(tmp_path) -> None:
    path = str(tmp_path / f"pn-{uuid.uuid4().hex[:8]}")
    create_netns(path)
    home = own_namespace()
    try:
        inside = run_in_netns(path, lambda: (threading.get_ident(), own_namespace()))
        assert inside == (threading.get_ident(), os.stat(path).st_ino)
        assert own_namespace() == home

        def fail() -> None:
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            run_in_netns(path, fail)
        assert own_namespace() == home
        # nested: each level goes back to where it came from
        assert run_in_netns(path, lambda: run_in_netns(path, own_namespace)) != home
        assert own_namespace() == home
    finally:
        delete_netns(path)


def test_a_thread_that_cannot_go_back_refuses_further_namespaces(tmp_path, monkeypatch) -> None:
    path = str(tmp_path / f"pn-{uuid.uuid4().hex[:8]}")
    create_netns(path)
    real_setns = _netns._setns
    calls: list[str] = []

    def refuse_the_way_back(fd: int, what: str) -> None:
        calls.append(what)
        if what.startswith("setns back"):  # not "back" in the path: tmp_path may hold one
            raise NetnsError(errno.ENOMEM, what)
        real_setns(fd, what)

    monkeypatch.setattr(_netns, "_setns", refuse_the_way_back)
    outcome: list[str] = []

    def stranded_thread() -> None:
        # a thread of its own: it stays in the namespace, and dies with the test
        try:
            run_in_netns(path, lambda: None)
        except NetnsError as exc:
            outcome.append(f"first: {exc.errno}")
        try:
            run_in_netns(path, lambda: None)
        except NetnsError as exc:
            outcome.append(f"then: {exc.errno} {'stranded' in str(exc)}")

    try:
        thread = threading.Thread(target=stranded_thread)
        thread.start()
        thread.join()
    finally:
        delete_netns(path)
    assert outcome == [f"first: {errno.ENOMEM}", f"then: {errno.EPERM} True"]
    assert len(calls) == 2, "the second call did not even try"


def _bounded(func) -> BaseException | None:
    """Run `func` on a thread that must finish within 10 s; return what it raised."""
    box: list[BaseException | None] = [None]

    def runner() -> None:
        try:
            func()
        except BaseException as exc:
            box[0] = exc

    thread = threading.Thread(target=runner, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "blocked on the path"
    return box[0]


@pytest.mark.parametrize("kind", ["fifo", "file", "directory", "proc-mount-ns"])
def test_a_path_that_is_not_a_network_namespace_is_refused_without_blocking(
    tmp_path, kind: str
) -> None:
    """A FIFO at CNI_NETNS blocked open() until a writer came (issue 13); it is opened
    O_NONBLOCK now, and its filesystem checked as containernetworking's pkg/ns does."""
    path = str(tmp_path / "ns")
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "file":
        open(path, "w").close()
    elif kind == "directory":
        os.mkdir(path)
    else:  # nsfs, so the filesystem check passes, but a mount namespace
        path = "/proc/self/ns/mnt"
    error = _bounded(lambda: run_in_netns(path, lambda: None))
    assert isinstance(error, NotANetns), error
    assert "is not a network namespace" in str(error.strerror)


def test_namespace_files_pass_the_check() -> None:
    for path in ("/proc/self/ns/net", "/proc/thread-self/ns/net"):
        os.close(open_netns(path))


# Run in a private mount namespace, so the machine's own /run/netns is never changed:
# there it starts as a plain directory (as on a fresh machine), podnet mounts a namespace,
# then iproute2 adds one. iproute2 bind-mounts the directory onto itself when it is not a
# mount yet, which used to hide podnet's namespace: unlistable and undeletable (EBUSY).
_FRESH_NETNS_DIR_SCRIPT = """
import os, subprocess, sys
from podnet.netlink import DEFAULT_NETNS_DIR, create_netns, delete_netns, is_netns
directory = os.path.realpath(DEFAULT_NETNS_DIR)
while subprocess.run(["umount", directory], capture_output=True).returncode == 0:
    pass  # peel every mount off: a plain directory, as on a fresh machine
ours, theirs = os.path.join(directory, sys.argv[1]), sys.argv[1] + "-ip"
create_netns(ours)
subprocess.run(["ip", "netns", "add", theirs], check=True)
listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
assert sys.argv[1] in listed.split(), listed
assert is_netns(ours)
delete_netns(ours)
subprocess.run(["ip", "netns", "delete", theirs], check=True)
assert not os.path.exists(ours)
print("ok")
"""


def test_namespaces_made_before_iproute2s_first_stay_visible_and_deletable() -> None:
    import subprocess
    import sys

    name = f"pn-{uuid.uuid4().hex[:8]}"
    command = ["unshare", "--mount", "--propagation", "private", sys.executable, "-c"]
    try:
        done = subprocess.run(
            [*command, _FRESH_NETNS_DIR_SCRIPT, name], capture_output=True, text=True, timeout=60
        )
    finally:  # the mounts died with that mount namespace, its files may not have
        for leftover in (name, name + "-ip"):
            path = os.path.join(os.path.realpath(_netns.DEFAULT_NETNS_DIR), leftover)
            if os.path.lexists(path) and not is_netns(path):
                os.unlink(path)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr

"""One lock per attachment (issue 13): ADD, CHECK and DEL of one (container ID,
ifname) never interleave, within a process or across processes."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from podnet.cni import Plugin, Request, _attachment_lock, dispatch
from podnet.cni._attachment_lock import attachment_locked, lock_path
from podnet.cni._flock import LockTimeout

EVENTS: list[str] = []
RELEASE = threading.Event()
INSIDE = threading.Event()


def add(request: Request) -> None:
    EVENTS.append(f"ADD {request.container_id} in")
    INSIDE.set()
    RELEASE.wait(10)
    EVENTS.append(f"ADD {request.container_id} out")


def delete(request: Request) -> None:
    EVENTS.append(f"DEL {request.container_id}")


PLUGIN = Plugin(name="lock-test", add=add, delete=delete)  # type: ignore[arg-type]
CONF = json.dumps({"cniVersion": "1.0.0", "name": "net", "type": "lock-test"}).encode()


def environ(command: str, cid: str = "c1") -> dict[str, str]:
    return {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": "/run/netns/none",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/nowhere",
    }


@pytest.fixture(autouse=True)
def reset() -> None:
    EVENTS.clear()
    RELEASE.clear()
    INSIDE.clear()


def start_add(cid: str = "c1") -> threading.Thread:
    thread = threading.Thread(target=dispatch, args=(PLUGIN, environ("ADD", cid), CONF))
    thread.start()
    assert INSIDE.wait(10)
    return thread


def test_a_del_waits_for_the_add_of_its_attachment() -> None:
    adding = start_add()
    deleting = threading.Thread(target=dispatch, args=(PLUGIN, environ("DEL"), CONF))
    deleting.start()
    deleting.join(0.3)
    assert deleting.is_alive(), "the DEL ran alongside the ADD"
    RELEASE.set()
    adding.join(10)
    deleting.join(10)
    assert EVENTS == ["ADD c1 in", "ADD c1 out", "DEL c1"]
    assert not os.path.exists(lock_path("c1", "eth0")), "a DEL removes the lock file"


def test_other_attachments_do_not_wait() -> None:
    adding = start_add("c1")
    try:
        assert dispatch(PLUGIN, environ("DEL", "c2"), CONF)[0] == 0
        assert EVENTS == ["ADD c1 in", "DEL c2"]
    finally:
        RELEASE.set()
        adding.join(10)
    assert os.path.exists(lock_path("c1", "eth0")), "an ADD leaves its lock file for the DEL"


def test_a_del_behind_a_stuck_add_is_code_11(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_attachment_lock, "ATTACHMENT_LOCK_TIMEOUT", 0.2)
    adding = start_add()
    try:
        code, out = dispatch(PLUGIN, environ("DEL"), CONF)
    finally:
        RELEASE.set()
        adding.join(10)
    assert code == 1
    error = json.loads(out)
    assert error["code"] == 11
    assert "c1/eth0 is still running" in error["msg"]
    assert EVENTS == ["ADD c1 in", "ADD c1 out"]


def test_another_process_holding_the_lock_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from podnet.cni._attachment_lock import attachment_locked\n"
            "with attachment_locked('c1', 'eth0'):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(float(sys.argv[1]))\n"
            "    print('done', flush=True)\n",
            "1.0",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"held\n"
        monkeypatch.setattr(_attachment_lock, "ATTACHMENT_LOCK_TIMEOUT", 0.2)
        assert json.loads(dispatch(PLUGIN, environ("DEL"), CONF)[1])["code"] == 11
        monkeypatch.setattr(_attachment_lock, "ATTACHMENT_LOCK_TIMEOUT", 20)
        assert dispatch(PLUGIN, environ("DEL"), CONF)[0] == 0
        # "done" is printed just before the holder lets go: the DEL finished after it
        ready, _, _ = select.select([holder.stdout], [], [], 0)
        assert ready, "the DEL ran while the other process held the lock"
        assert holder.stdout.readline() == b"done\n"
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()
    assert EVENTS == ["DEL c1"]


def test_a_waiter_on_a_removed_lock_file_takes_the_new_one(tmp_path: Path) -> None:
    first_in = threading.Event()
    let_go = threading.Event()
    order: list[str] = []

    def deleter() -> None:
        with attachment_locked("c9", "eth0") as held:
            first_in.set()
            let_go.wait(10)
            held.remove = True
            order.append("del done")

    def adder() -> None:
        with attachment_locked("c9", "eth0", timeout=10):
            order.append("add in")
            fd_path = lock_path("c9", "eth0")
            assert os.path.exists(fd_path)

    one = threading.Thread(target=deleter)
    one.start()
    assert first_in.wait(10)
    two = threading.Thread(target=adder)
    two.start()
    two.join(0.2)
    assert two.is_alive()
    let_go.set()
    one.join(10)
    two.join(10)
    assert order == ["del done", "add in"]


def test_lock_timeout_is_raised_by_the_lock_itself() -> None:
    with attachment_locked("c3", "eth0"):
        waiter: list[BaseException] = []

        def other() -> None:
            try:
                with attachment_locked("c3", "eth0", timeout=0.1):
                    pass
            except LockTimeout as exc:
                waiter.append(exc)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(10)
        assert len(waiter) == 1


def test_a_long_attachment_name_is_hashed(tmp_path: Path) -> None:
    path = lock_path("c" * 300, "eth0", str(tmp_path))
    assert len(os.path.basename(path)) == 64
    assert lock_path("c1", "eth0", str(tmp_path)) == str(tmp_path / "c1:eth0")

"""The network's lock is taken with a deadline (issue 13): a process that holds it and
hangs costs a pod a code 11 "try again" naming that process, not a request stuck forever."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from podnet.cni import dispatch
from podnet.plugins.ipam.host_local import PLUGIN, _store
from tests.plugins.host_local._helpers import environ, netconf, reservations


@pytest.fixture
def held_lock(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """util-linux flock(1) holding net1's lock file, as a hung plugin would."""
    if shutil.which("flock") is None:
        pytest.skip("util-linux flock is not installed")
    network = tmp_path / "net1"
    network.mkdir()
    lock = network / "lock"
    lock.touch()
    # its own session: killing it must also end the `sleep` that inherited the lock
    proc = subprocess.Popen(["flock", str(lock), "sleep", "60"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        with open(lock, "rb") as handle:
            while _lock_is_free(handle.fileno()):
                assert time.monotonic() < deadline, "flock(1) did not take the lock"
                time.sleep(0.01)
        yield proc
    finally:
        end(proc)


def _lock_is_free(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return True


def end(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)


def add(tmp_path: Path, cid: str) -> tuple[int, dict[str, object]]:
    env = environ("ADD", cid=cid)
    code, out = dispatch(PLUGIN, env, json.dumps(netconf(tmp_path)).encode())
    return code, json.loads(out)


def test_a_held_lock_is_code_11_naming_its_holder(
    tmp_path: Path, held_lock: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_store, "LOCK_TIMEOUT", 0.3)
    code, error = add(tmp_path, "c1")
    assert code == 1
    assert error["code"] == 11, error
    assert f"by pid {held_lock.pid} (flock)" in str(error["msg"])
    assert reservations(tmp_path / "net1") == {}
    assert not [p for p in (tmp_path / "net1").iterdir() if p.name.startswith(".tmp-")]
    end(held_lock)
    code, result = add(tmp_path, "c1")
    assert code == 0, result

"""CNI executables hand requests to the agent's socket and print what it answers: the
compiled launcher and the Python thin executable, each test through both."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from podnet.agent import CNIServer
from podnet.cni import IPConfig, Plugin, Request, Result
from podnet.plugins import build_launcher, executable_text, launcher_image

SEEN: list[tuple[str, int]] = []
RELEASE = threading.Event()


def add(request: Request) -> Result:
    SEEN.append((request.container_id, threading.get_ident()))
    if request.config.get("hang"):
        RELEASE.wait(10)
    return Result(ips=[IPConfig(address=ipaddress.ip_interface("10.244.9.2/24"))])


def delete(request: Request) -> None:
    SEEN.append((request.container_id, threading.get_ident()))


TEST_PLUGIN = Plugin(name="agent-test", add=add, delete=delete)


def resolve(plugin_type: str) -> Plugin:
    if plugin_type != "agent-test":
        raise KeyError(plugin_type)
    return TEST_PLUGIN


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CNIServer]:
    SEEN.clear()
    RELEASE.clear()
    srv = CNIServer(str(tmp_path / "agent.sock"), resolve=resolve, request_timeout=1.0)
    srv.start()
    try:
        yield srv
    finally:
        RELEASE.set()
        srv.stop()


@pytest.fixture(params=["launcher", "thin"])
def client(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def write_exe(tmp_path: Path, plugin_type: str, socket_path: str, client: str) -> Path:
    exe = tmp_path / plugin_type
    if client == "launcher":
        with open(build_launcher(), "rb") as handle:
            exe.write_bytes(launcher_image(handle.read(), plugin_type, socket_path))
    else:
        exe.write_text(executable_text(plugin_type, agent_socket=socket_path))
    exe.chmod(0o755)
    return exe


def run(exe: Path, command: str, config: dict[str, object], cid: str = "c1"):
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": "/run/netns/whatever",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": str(exe.parent),
        "PODNET_LOG_FILE": os.environ["PODNET_LOG_FILE"],
    }
    return subprocess.run(
        [str(exe)], env=env, input=json.dumps(config).encode(), capture_output=True, check=False
    )


CONF: dict[str, object] = {"cniVersion": "1.0.0", "name": "net", "type": "agent-test"}


def test_requests_run_in_the_agent(server: CNIServer, tmp_path: Path, client: str) -> None:
    exe = write_exe(tmp_path, "agent-test", server.socket_path, client)
    proc = run(exe, "ADD", CONF)
    assert proc.returncode == 0, proc.stdout
    result = json.loads(proc.stdout)
    assert result["cniVersion"] == "1.0.0"
    assert result["ips"] == [{"address": "10.244.9.2/24"}]
    assert proc.stderr == b""
    assert run(exe, "DEL", CONF).returncode == 0
    # both ran in this (the agent's) process, on worker threads
    assert [cid for cid, _ in SEEN] == ["c1", "c1"]
    assert all(ident != threading.get_ident() for _, ident in SEEN)
    assert server.served == 2


def test_errors_come_back_with_their_code(server: CNIServer, tmp_path: Path, client: str) -> None:
    exe = write_exe(tmp_path, "agent-test", server.socket_path, client)
    proc = run(exe, "ADD", {"cniVersion": "1.0.0", "type": "agent-test"})  # no name
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["code"] == 7


def test_unknown_type(server: CNIServer, tmp_path: Path, client: str) -> None:
    exe = write_exe(tmp_path, "no-such-type", server.socket_path, client)
    proc = run(exe, "ADD", CONF)
    assert proc.returncode == 1
    assert "no plugin of type 'no-such-type'" in json.loads(proc.stdout)["msg"]


def test_hanging_request_times_out_and_agent_keeps_serving(
    server: CNIServer, tmp_path: Path, client: str
) -> None:
    exe = write_exe(tmp_path, "agent-test", server.socket_path, client)
    proc = run(exe, "ADD", {**CONF, "hang": True}, cid="slow")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["code"] == 11
    assert run(exe, "ADD", CONF, cid="fast").returncode == 0


def test_garbage_on_the_socket_does_not_hurt(
    server: CNIServer, tmp_path: Path, client: str
) -> None:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(server.socket_path)
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        try:
            answer = sock.recv(100)
        except ConnectionResetError:  # closed with our bytes unread: also a refusal
            answer = b""
        assert answer == b""
    exe = write_exe(tmp_path, "agent-test", server.socket_path, client)
    assert run(exe, "ADD", CONF).returncode == 0


def test_requests_are_served_by_the_same_few_workers(tmp_path: Path, client: str) -> None:
    """No thread per request: a handful of long-lived workers serve them all."""
    SEEN.clear()
    srv = CNIServer(str(tmp_path / "agent.sock"), resolve=resolve, workers=2)
    srv.start()
    try:
        exe = write_exe(tmp_path, "agent-test", srv.socket_path, client)
        for index in range(6):
            assert run(exe, "ADD", CONF, cid=f"c{index}").returncode == 0
    finally:
        srv.stop()
    assert len(SEEN) == 6
    assert len({ident for _, ident in SEEN}) <= 2


def test_a_late_request_is_replaced_by_a_fresh_worker(tmp_path: Path, client: str) -> None:
    """With one worker stuck past its timeout, the next pod is still served."""
    SEEN.clear()
    RELEASE.clear()
    srv = CNIServer(str(tmp_path / "agent.sock"), resolve=resolve, workers=1, request_timeout=0.5)
    srv.start()
    try:
        exe = write_exe(tmp_path, "agent-test", srv.socket_path, client)
        late = run(exe, "ADD", {**CONF, "hang": True}, cid="stuck")
        assert json.loads(late.stdout)["code"] == 11
        assert run(exe, "ADD", CONF, cid="next").returncode == 0
        assert [cid for cid, _ in SEEN] == ["stuck", "next"]
    finally:
        RELEASE.set()
        srv.stop()
    assert srv.served == 1, "the late answer was dropped, not sent twice"

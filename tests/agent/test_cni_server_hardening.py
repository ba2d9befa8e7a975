"""A bad or slow client on the agent's CNI socket is refused cleanly and costs the other
pods nothing (issue 13): every failure is answered or closed, the workers live on, reads
have a deadline, fields a limit, the pool a cap, and only trusted users get in."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from podnet._wire import MAGIC, MAX_FIELD, connect, encode_request, exchange
from podnet.agent import CNIServer
from podnet.agent._cni_socket import UnsafeSocketDir
from tests.agent.test_cni_server import CONF, RELEASE, SEEN, resolve, run, write_exe

ENV = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "c1",
    "CNI_NETNS": "/run/netns/x",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/opt/cni/bin",
}


def u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def send_raw(path: str, data: bytes, timeout: float = 10.0) -> bytes:
    """Send `data`, end the write side, and return all the agent answers until it closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.fixture(params=["launcher", "thin"])
def client(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def cni_error(answer: bytes) -> dict[str, object]:
    assert len(answer) >= 8, answer
    assert int.from_bytes(answer[:4], "big") == 1
    size = int.from_bytes(answer[4:8], "big")
    error: dict[str, object] = json.loads(answer[8 : 8 + size])
    return error


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CNIServer]:
    SEEN.clear()
    RELEASE.clear()
    srv = CNIServer(str(tmp_path / "agent.sock"), resolve=resolve, request_timeout=5.0)
    srv.start()
    try:
        yield srv
    finally:
        RELEASE.set()
        srv.stop()


MALFORMED = [
    # (what, bytes, expected CNI error code or None for a plain close)
    ("bad magic", b"XXXX" + u32(3) + b"abc", None),
    ("HTTP", b"GET / HTTP/1.0\r\n\r\n", None),
    ("one byte", b"P", None),
    ("non-UTF-8 plugin type", encode_request("x", ENV, b"{}").replace(b"x", b"\xff\xfe", 1), 4),
    ("truncated length", MAGIC + b"\x00\x00", 6),
    ("truncated field", MAGIC + u32(10) + b"abc", 6),
    ("truncated stdin", encode_request("agent-test", ENV, b"{}")[:-1], 6),
    ("absurd type length", MAGIC + u32(0xFFFFFFFF), 4),
    ("absurd environ length", MAGIC + u32(1) + b"x" + u32(0xFFFFFFF0), 4),
    ("absurd stdin length", MAGIC + u32(1) + b"x" + u32(0) + u32(MAX_FIELD + 1), 6),
    # read with the request in one recv: what follows it is not ignored but refused
    ("bytes after the request", encode_request("agent-test", ENV, b"{}") + b"!", 6),
]


@pytest.mark.parametrize(("what", "data", "code"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_requests_are_answered_or_closed(
    server: CNIServer, what: str, data: bytes, code: int | None
) -> None:
    answer = send_raw(server.socket_path, data)
    if code is None:
        assert answer == b""
    else:
        error = cni_error(answer)
        assert error["code"] == code, error
        assert error["msg"]
    assert server.worker_count == 16, "a worker died"
    assert server.refused == 1


def test_reproduction_malformed_then_40_one_byte_clients_then_an_add(
    tmp_path: Path, client: str
) -> None:
    """Issue 13's report: after malformed requests and 40 clients that send one byte and
    wait, the next ADD through the installed executable took ~30 s. Now it is answered
    while all 40 are still connected and unanswered (their read deadline is 60 s)."""
    srv = CNIServer(str(tmp_path / "agent.sock"), resolve=resolve, read_timeout=60.0)
    srv.start()
    idlers: list[socket.socket] = []
    try:
        for _, data, _ in MALFORMED:
            send_raw(srv.socket_path, data)
        for _ in range(40):
            idler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            idlers.append(idler)
            idler.connect(srv.socket_path)
            idler.sendall(b"P")
        exe = write_exe(tmp_path, "agent-test", srv.socket_path, client)
        env_timeout = 20  # the old server needed ~30 s here; the read deadline is 60 s
        proc = subprocess.run(
            [str(exe)],
            env={
                **ENV,
                "PODNET_LOG_FILE": os.environ["PODNET_LOG_FILE"],
                "PODNET_LOCK_DIR": os.environ["PODNET_LOCK_DIR"],
            },
            input=json.dumps(CONF).encode(),
            capture_output=True,
            timeout=env_timeout,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout
        for idler in idlers:  # none was answered or closed: they hold no worker
            idler.setblocking(False)
            with pytest.raises(BlockingIOError):
                idler.recv(1)
        assert srv.worker_count == 16
    finally:
        for idler in idlers:
            idler.close()
        srv.stop()


def test_a_slow_but_complete_client_is_served(server: CNIServer) -> None:
    """A client that pauses mid-request longer than a worker reads still gets its
    answer, from the slow path, within the overall read deadline."""
    data = encode_request("agent-test", ENV, json.dumps(CONF).encode())
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(server.socket_path)
        sock.sendall(data[:10])
        threading.Event().wait(1.0)  # > the workers' 0.25 s
        sock.sendall(data[10:])
        sock.shutdown(socket.SHUT_WR)
        code, out = int.from_bytes(sock.recv(4), "big"), b""
        while chunk := sock.recv(65536):
            out += chunk
    assert code == 0, out
    assert json.loads(out[4:])["ips"] == [{"address": "10.244.9.2/24"}]


def test_a_client_that_never_finishes_gets_try_again(tmp_path: Path) -> None:
    srv = CNIServer(str(tmp_path / "agent.sock"), resolve=resolve, read_timeout=1.0)
    srv.start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(srv.socket_path)
            sock.sendall(encode_request("agent-test", ENV, b"{}")[:-1])  # no SHUT_WR
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert cni_error(answer)["code"] == 11
        assert srv.worker_count == 16
    finally:
        srv.stop()


def test_a_1_mib_stdin_passes(server: CNIServer, tmp_path: Path, client: str) -> None:
    exe = write_exe(tmp_path, "agent-test", server.socket_path, client)
    proc = run(exe, "ADD", {**CONF, "padding": "x" * (1024 * 1024)})
    assert proc.returncode == 0, proc.stdout[:200]
    assert json.loads(proc.stdout)["ips"] == [{"address": "10.244.9.2/24"}]


def test_an_oversized_stdin_is_answered_code_6_not_dropped(
    server: CNIServer, tmp_path: Path, client: str
) -> None:
    exe = write_exe(tmp_path, "agent-test", server.socket_path, client)
    proc = run(exe, "ADD", {**CONF, "padding": " " * (3 * MAX_FIELD)})
    assert proc.returncode == 1
    error = json.loads(proc.stdout)
    assert error["code"] == 6
    assert "limit" in error["msg"]
    assert SEEN == []


def test_the_watchdog_adds_workers_up_to_a_cap(tmp_path: Path) -> None:
    SEEN.clear()
    RELEASE.clear()
    srv = CNIServer(
        str(tmp_path / "agent.sock"),
        resolve=resolve,
        workers=1,
        max_workers=2,
        request_timeout=0.3,
    )
    srv.start()
    answers: list[int] = []
    exe = write_exe(tmp_path, "agent-test", srv.socket_path, "launcher")

    def hang(cid: str) -> None:
        proc = run(exe, "ADD", {**CONF, "hang": True}, cid=cid)
        answers.append(json.loads(proc.stdout)["code"])

    try:
        clients = [threading.Thread(target=hang, args=(f"h{i}",)) for i in range(2)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=30)
        assert answers == [11, 11]
        # Both hung: the first was replaced, the second was not (the cap is 2 workers).
        assert srv.worker_count == 2
        RELEASE.set()
        assert run(exe, "ADD", CONF, cid="after").returncode == 0
    finally:
        RELEASE.set()
        srv.stop()


def test_other_users_are_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to connect as another user")
    SEEN.clear()
    directory = tempfile.mkdtemp(prefix="podnet-peercred-")
    try:
        os.chmod(directory, 0o755)
        srv = CNIServer(os.path.join(directory, "agent.sock"), resolve=resolve)
        srv.start()
        try:
            os.chmod(srv.socket_path, 0o666)  # only the peer credential check is left
            client = (
                "import socket, sys\n"
                "s = socket.socket(socket.AF_UNIX)\n"
                "s.connect(sys.argv[1])\n"
                "try:\n"
                "    s.sendall(sys.stdin.buffer.read())\n"
                "    s.shutdown(socket.SHUT_WR)\n"
                "    sys.stdout.buffer.write(s.recv(100))\n"
                "except (ConnectionResetError, BrokenPipeError):\n"
                "    pass\n"
            )
            proc = subprocess.run(
                [sys.executable, "-c", client, srv.socket_path],
                input=encode_request("agent-test", ENV, json.dumps(CONF).encode()),
                capture_output=True,
                user=65534,
                timeout=30,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout == b""
            assert SEEN == []
            assert srv.refused == 1
        finally:
            srv.stop()
    finally:
        os.rmdir(directory)


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o1777])
def test_a_socket_dir_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    directory = tmp_path / "run"
    directory.mkdir()
    directory.chmod(mode)
    srv = CNIServer(str(directory / "agent.sock"), resolve=resolve)
    with pytest.raises(UnsafeSocketDir, match="writable by group or others"):
        srv.start()


def test_a_socket_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    directory = tmp_path / "run"
    directory.mkdir(mode=0o755)
    os.chown(directory, 65534, 65534)
    with pytest.raises(UnsafeSocketDir, match="owned by uid 65534"):
        CNIServer(str(directory / "agent.sock"), resolve=resolve).start()


def test_a_file_that_is_not_a_socket_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    path.write_text("not a socket")
    with pytest.raises(UnsafeSocketDir, match="not a socket"):
        CNIServer(str(path), resolve=resolve).start()
    assert path.read_text() == "not a socket"


def test_the_python_client_reads_an_answer_sent_before_its_request_was_read(
    server: CNIServer,
) -> None:
    """podnet._wire.exchange: a send cut short by the agent's refusal still gets the
    agent's answer (the launcher's writes complete because the agent drains)."""
    stdin = b"{" + b" " * (3 * MAX_FIELD) + b"}"
    code, out = exchange(connect(server.socket_path, 10), "agent-test", ENV, stdin)
    assert code == 1
    assert json.loads(out)["code"] == 6


def test_stopping_closes_the_connections_of_slow_clients(tmp_path: Path) -> None:
    srv = CNIServer(str(tmp_path / "agent.sock"), resolve=resolve, read_timeout=60.0)
    srv.start()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(srv.socket_path)
        sock.sendall(b"P")
        deadline = time.monotonic() + 10
        while srv._slow.held != 1:  # handed to the slow reader after the workers' read
            assert time.monotonic() < deadline
            time.sleep(0.01)
        srv.stop()
        assert sock.recv(1) == b""  # closed by the agent, not left to the GC

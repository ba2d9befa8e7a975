"""The compiled launcher against the Python thin executable: one protocol, two clients.

A recording agent on a real unix socket keeps every request's raw bytes and answers
from them, so the same call through both clients must give the same bytes on the wire,
the same stdout and the same exit code; then the paths without an agent."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podnet.plugins import PLUGIN_MODULES
from podnet.plugins._delegate import podnet_type_of
from podnet.plugins._install import executable_text, install_executables, launcher_image
from podnet.plugins._launcher import CACHE_ENV, COMPILER_ENV, build_launcher

Env = dict[bytes, bytes]


class RecordingAgent:
    """Accepts on a unix socket; reads each request to its end and answers per `mode`:
    "echo" (code 3, stdout derived from the request's bytes), "close" (no answer),
    "half" (the exit code only), "huge" (a stdout length past the protocol's limit)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.mode = "echo"
        self.requests: list[bytes] = []
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(8)
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(10)
                chunks = []
                while chunk := conn.recv(1 << 20):
                    chunks.append(chunk)
                raw = b"".join(chunks)
                self.requests.append(raw)
                if self.mode == "echo":
                    out = b"echo " + hashlib.sha256(raw).hexdigest().encode() + b"\xff\n"
                    conn.sendall((3).to_bytes(4, "big") + len(out).to_bytes(4, "big") + out)
                elif self.mode == "half":
                    conn.sendall((0).to_bytes(4, "big"))
                elif self.mode == "huge":
                    conn.sendall((0).to_bytes(4, "big") + (1 << 30).to_bytes(4, "big"))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[RecordingAgent]:
    server = RecordingAgent(str(tmp_path / "agent.sock"))
    try:
        yield server
    finally:
        server.close()


def write_clients(directory: Path, plugin_type: str, agent_socket: str) -> tuple[Path, Path]:
    """The launcher and the Python thin executable for the same plugin and agent."""
    with open(build_launcher(), "rb") as handle:
        image = launcher_image(handle.read(), plugin_type, agent_socket)
    launcher = directory / "launcher" / plugin_type
    thin = directory / "thin" / plugin_type
    for path, content in ((launcher, image), (thin, executable_text(plugin_type, agent_socket))):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        path.chmod(0o755)
    return launcher, thin


def run(exe: Path, env: Env, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(exe)], env=env, input=stdin, capture_output=True, timeout=60, check=False
    )


def base_env() -> Env:
    return {
        b"CNI_COMMAND": b"ADD",
        b"CNI_CONTAINERID": b"c1",
        b"CNI_NETNS": b"/run/netns/x",
        b"CNI_IFNAME": b"eth0",
        b"CNI_PATH": b"/opt/cni/bin",
        b"PATH": b"/usr/sbin:/usr/bin",
        b"PODNET_LOG_FILE": os.environ["PODNET_LOG_FILE"].encode(),
        b"PODNET_LOCK_DIR": os.environ["PODNET_LOCK_DIR"].encode(),  # the test run's
        b"HOME": b"/root",  # not forwarded
    }


CONF = b'{"cniVersion": "1.1.0", "name": "net", "type": "bridge"}'
ODD_CALLS: dict[str, tuple[dict[bytes, bytes | None], bytes]] = {
    "plain": ({}, CONF),
    "value with =": ({b"CNI_ARGS": b"K8S_POD_NAME=a=b;IgnoreUnknown=1"}, CONF),
    "non-UTF-8": ({b"CNI_IFNAME": b"eth\xff\xfe", b"PODNET_X": b"\xc3("}, b"\xff\x00{"),
    "empty stdin": ({}, b""),
    "1 MiB stdin": ({}, b"{" + b"x" * (1 << 20) + b"}"),
    "no PATH": ({b"PATH": None}, CONF),
    "empty value": ({b"CNI_ARGS": b""}, CONF),
    "VERSION sends no stdin": ({b"CNI_COMMAND": b"VERSION"}, CONF),
}


@pytest.mark.parametrize("call", ODD_CALLS, ids=list(ODD_CALLS))
def test_same_bytes_through_both_clients(agent: RecordingAgent, tmp_path: Path, call: str) -> None:
    changes, stdin = ODD_CALLS[call]
    env = base_env()
    for key, value in changes.items():
        if value is None:
            del env[key]
        else:
            env[key] = value
    launcher, thin = write_clients(tmp_path, "bridge", agent.path)
    by_launcher = run(launcher, env, stdin)
    by_thin = run(thin, env, stdin)
    assert len(agent.requests) == 2
    assert agent.requests[0] == agent.requests[1]
    assert agent.requests[0].startswith(b"PNC1\0\0\0\x06bridge")
    assert (by_launcher.returncode, by_launcher.stdout) == (by_thin.returncode, by_thin.stdout)
    assert by_launcher.returncode == 3
    assert by_launcher.stdout.startswith(b"echo ")
    assert by_launcher.stderr == b""
    if call == "VERSION sends no stdin":
        assert agent.requests[0].endswith(b"\0\0\0\0")


@pytest.mark.parametrize(
    ("mode", "details"),
    [
        ("close", "connection closed mid-message"),
        ("half", "connection closed mid-message"),
        ("huge", f"field of {1 << 30} bytes is too large"),
    ],
)
def test_agent_that_does_not_answer_is_code_11(
    agent: RecordingAgent, tmp_path: Path, mode: str, details: str
) -> None:
    agent.mode = mode
    launcher, thin = write_clients(tmp_path, "bridge", agent.path)
    by_launcher = run(launcher, base_env(), CONF)
    by_thin = run(thin, base_env(), CONF)
    assert by_launcher.returncode == by_thin.returncode == 1
    assert by_launcher.stdout == by_thin.stdout
    error = json.loads(by_launcher.stdout)
    assert error["code"] == 11
    assert error["details"] == details
    assert len(agent.requests) == 2, "the request reached the agent; it is not run again here"


HOST_LOCAL_CONF: dict[str, Any] = {
    "cniVersion": "1.1.0",
    "name": "net",
    "type": "bridge",
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.7.0/24"}]]},
}


@pytest.mark.parametrize("why", ["no socket file", "nobody listening", "path too long"])
def test_without_agent_the_plugin_runs_in_process(tmp_path: Path, why: str) -> None:
    socket_path = tmp_path / "agent.sock"
    reason = "No such file or directory"
    if why == "path too long":
        socket_path = tmp_path / ("s" * 120)
        reason = "AF_UNIX path too long"  # as Python words it
    if why == "nobody listening":
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
            dead.bind(str(socket_path))  # bound, never listening: connect is refused
        reason = "Connection refused"
    launcher, _ = write_clients(tmp_path, "host-local", str(socket_path))
    log = tmp_path / "cni.log"
    env = {**base_env(), b"PODNET_LOG_FILE": str(log).encode()}
    conf = HOST_LOCAL_CONF | {"ipam": HOST_LOCAL_CONF["ipam"] | {"dataDir": str(tmp_path / "n")}}
    proc = run(launcher, env, json.dumps(conf).encode())
    assert proc.returncode == 0, proc.stdout
    assert json.loads(proc.stdout)["ips"] == [{"address": "10.244.7.2/24", "gateway": "10.244.7.1"}]
    assert "10.244.7.2" in os.listdir(tmp_path / "n" / "net")
    line = f"agent at {socket_path} unreachable ({reason}); host-local runs in-process"
    assert log.read_text().count(line) == 1


def test_version_without_agent(tmp_path: Path) -> None:
    launcher, thin = write_clients(tmp_path, "flannel", str(tmp_path / "no.sock"))
    env = {**base_env(), b"CNI_COMMAND": b"VERSION"}
    by_launcher = run(launcher, env, b'{"cniVersion": "1.1.0"}')
    assert by_launcher.returncode == 0
    assert json.loads(by_launcher.stdout)["supportedVersions"][-1] == "1.1.0"
    assert by_launcher.stdout == run(thin, env, b'{"cniVersion": "1.1.0"}').stdout


def test_no_command_describes_the_plugin(tmp_path: Path) -> None:
    launcher, _ = write_clients(tmp_path, "loopback", str(tmp_path / "no.sock"))
    proc = run(launcher, {b"PATH": b"/usr/bin"}, b"")
    assert proc.returncode == 0
    assert proc.stdout == b""
    assert b"CNI protocol versions supported" in proc.stderr


def test_launcher_without_settings_says_so(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.write_bytes(Path(build_launcher()).read_bytes())
    bare.chmod(0o755)
    proc = run(bare, base_env(), CONF)
    assert proc.returncode == 1
    error = json.loads(proc.stdout)
    assert error["code"] == 999
    assert error["msg"] == "podnet launcher: no settings appended"


def install_cni(bin_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "podnet.cli.main",
            "install-cni",
            "--bin-dir",
            str(bin_dir),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_install_cni_installs_the_launcher_under_every_name(tmp_path: Path) -> None:
    proc = install_cni(tmp_path / "bin", {**os.environ, CACHE_ENV: str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert sorted(os.listdir(tmp_path / "bin")) == sorted(PLUGIN_MODULES)
    for name in PLUGIN_MODULES:
        exe = tmp_path / "bin" / name
        assert exe.read_bytes().startswith(b"\x7fELF")
        assert podnet_type_of(str(exe)) == name  # delegation still recognises it
    assert len(os.listdir(tmp_path / "cache")) == 1, "one build, kept for the next install"


def test_install_cni_without_a_compiler_installs_thin_executables(tmp_path: Path) -> None:
    env = {
        **os.environ,
        CACHE_ENV: str(tmp_path / "cache"),
        COMPILER_ENV: str(tmp_path / "no-such-cc"),
    }
    proc = install_cni(tmp_path / "bin", env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("podnet install-cni: no C compiler: ")
    assert "installing the Python thin executables instead" in lines[0]
    for name in PLUGIN_MODULES:
        exe = tmp_path / "bin" / name
        assert exe.read_bytes().startswith(b"#!")
        assert podnet_type_of(str(exe)) == name


def test_install_without_a_compiler_tells_the_caller_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(COMPILER_ENV, str(tmp_path / "no-such-cc"))
    told: list[str] = []
    install_executables(str(tmp_path / "bin"), warn=told.append)
    assert len(told) == 1
    assert str(tmp_path / "no-such-cc") in told[0]


def test_built_dynamically_where_static_linking_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiler = tmp_path / "cc-without-static-libc"
    compiler.write_text(
        "#!/bin/sh\n"
        'for arg; do [ "$arg" = -static ] && { echo "ld: cannot find -lc" >&2; exit 1; }; done\n'
        'exec cc "$@"\n'
    )
    compiler.chmod(0o755)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(COMPILER_ENV, str(compiler))
    binary = Path(build_launcher()).read_bytes()
    assert b"/ld-linux" in binary, "dynamically linked: it names its loader"
    assert build_launcher() == build_launcher(), "built once, then taken from the cache"
    exe = tmp_path / "loopback"
    exe.write_bytes(launcher_image(binary, "loopback", str(tmp_path / "no.sock")))
    exe.chmod(0o755)
    proc = run(exe, {**base_env(), b"CNI_COMMAND": b"VERSION"}, b"")
    assert proc.returncode == 0, proc.stdout
    assert json.loads(proc.stdout)["cniVersion"] == "1.1.0"


def test_static_where_the_toolchain_allows() -> None:
    found = subprocess.run(
        ["cc", "-print-file-name=libc.a"], capture_output=True, text=True, check=True
    )
    if not os.path.isabs(found.stdout.strip()):
        pytest.skip("no static libc here (Debian's libc6-dev has one)")
    assert b"/ld-linux" not in Path(build_launcher()).read_bytes()

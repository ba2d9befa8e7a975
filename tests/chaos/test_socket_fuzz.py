"""Fuzzing a live agent's CNI socket (`podnet agent serve-cni`, a process of its own in
a node namespace): REQUESTS random and mutated requests from several clients, while
SLOW_CLIENTS connections send one byte and then nothing. Afterwards a pod ADD through
the installed executable must be answered in under a second, the agent must still run,
and its thread count must come back to what it was before."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from podnet._wire import MAGIC, MAX_FIELD, encode_request
from podnet.plugins import install_executables
from tests.chaos._figures import Budget, Limit, record
from tests.plugins.flannel._chain import ChainNode
from tests.plugins.flannel.test_kill import Killable

pytestmark = [pytest.mark.chaos, pytest.mark.root]

REQUESTS = 10_000
SLOW_CLIENTS = 40
CLIENTS = 8
ANSWER_WITHIN = 5.0  # seconds a fuzz client waits for an answer or a close
BUDGET = 300.0
ADD_WITHIN_MS = 1000.0
ADD_GIVE_UP = 30.0
SEED = 1313


def agent_threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads line")


@pytest.fixture
def agent(node_netns: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    socket_path = str(tmp_path / "agent" / "cni.sock")
    log = open(tmp_path / "agent.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            "nsenter",
            f"--net={node_netns}",
            sys.executable,
            "-m",
            "podnet.cli.main",
            "agent",
            "serve-cni",
            "--socket",
            socket_path,
            "--request-timeout",
            "5",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env={**os.environ, "PODNET_LOG_FILE": str(tmp_path / "cni.log")},
    )
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(socket_path):
            assert proc.poll() is None, "the agent exited at start"
            assert time.monotonic() < deadline, "the agent did not listen in time"
            time.sleep(0.05)
        yield proc, socket_path
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


class Fuzzer:
    """Requests to throw at the socket, each a small recipe drawn at random."""

    def __init__(self, rng: random.Random, conf: dict[str, object], fifo: str) -> None:
        self.rng = rng
        self.conf = json.dumps(conf).encode()
        self.fifo = fifo
        self.env = {
            "CNI_COMMAND": "VERSION",
            "CNI_CONTAINERID": "fuzz",
            "CNI_NETNS": "/nonexistent/netns",
            "CNI_IFNAME": "eth0",
            "CNI_PATH": "/nonexistent",
        }

    def valid(self, **env: str) -> bytes:
        return encode_request("flannel", {**self.env, **env}, self.conf)

    def make(self) -> tuple[str, bytes]:
        rng = self.rng
        kind = rng.choice(KINDS)
        base = self.valid(CNI_COMMAND=rng.choice(["VERSION", "CHECK", "DEL", "STATUS"]))
        if kind == "random-bytes":
            return kind, rng.randbytes(rng.randint(0, 300))
        if kind == "bit-flips":
            data = bytearray(base)
            for _ in range(rng.randint(1, 6)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            return kind, bytes(data)
        if kind == "truncated":
            return kind, base[: rng.randrange(len(base))]
        if kind == "bad-magic":
            return kind, b"PNC2" + base[4:]
        if kind == "absurd-length":
            size = rng.choice([0xFFFFFFFF, MAX_FIELD + 1, (1 << 20) + 1, 1 << 24])
            return kind, MAGIC + u32(size) + b"flannel"
        if kind == "non-utf8-type":
            return kind, MAGIC + u32(2) + b"\xff\xfe" + base[4 + 4 + len(b"flannel") :]
        if kind == "unknown-type":
            return kind, encode_request("no-such-plugin", self.env, self.conf)
        if kind == "deep-json":
            return kind, encode_request("flannel", self.env, b"[" * 100_000)
        if kind == "bad-json":
            stdin = rng.choice(
                [
                    b"{",
                    b'{"cniVersion": "1.0.\\u00b2", "name": "n", "type": "flannel"}',
                    b'{"cniVersion": "1.0.0", "name": "\\ud800", "type": "flannel"}',
                    b"\xff\xfe\xfd",
                    b"null",
                    b"[]",
                ]
            )
            env = {**self.env, "CNI_COMMAND": "ADD"}
            return kind, encode_request("flannel", env, stdin)
        if kind == "bad-env":
            raw = MAGIC + u32(7) + b"flannel"
            env_bytes = rng.choice(
                [b"no-equals\0\xff\xff=\xfe", b"=" * 50, b"CNI_IFNAME=" + "é".encode() * 15]
            )
            return kind, raw + u32(len(env_bytes)) + env_bytes + u32(len(self.conf)) + self.conf
        if kind == "fifo-netns":
            return kind, self.valid(CNI_COMMAND="ADD", CNI_NETNS=self.fifo, CNI_CONTAINERID="f")
        if kind == "add-missing-netns":
            cid = f"m{rng.randrange(1000)}"
            return kind, self.valid(CNI_COMMAND="ADD", CNI_CONTAINERID=cid)
        if kind == "huge-stdin":
            return kind, encode_request("flannel", self.env, b" " * (2 << 20))
        return "connect-close", b""


KINDS = [
    "random-bytes",
    "random-bytes",
    "bit-flips",
    "bit-flips",
    "bit-flips",
    "truncated",
    "truncated",
    "bad-magic",
    "absurd-length",
    "non-utf8-type",
    "unknown-type",
    "deep-json",
    "bad-json",
    "bad-json",
    "bad-env",
    "fifo-netns",
    "add-missing-netns",
    "huge-stdin",
    "connect-close",
]


def throw(socket_path: str, payload: bytes) -> str:
    """Send one request, half-close, and say how the agent took it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(ANSWER_WITHIN)
    try:
        sock.connect(socket_path)
        if payload:
            try:
                sock.sendall(payload)
            except (BrokenPipeError, ConnectionResetError):
                return "closed"  # refused mid-send (a field too large): fine
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    except TimeoutError:
        return "no answer in time"
    except ConnectionResetError:
        return "closed"
    except OSError as exc:
        return f"connect failed: {exc.strerror}"
    finally:
        sock.close()
    if not answer:
        return "closed"
    if len(answer) < 8 or len(answer) != 8 + int.from_bytes(answer[4:8], "big"):
        return "garbled answer"
    code = int.from_bytes(answer[:4], "big")
    if code == 0 and not answer[8:].strip():
        return "success"  # DEL and GC print nothing
    try:
        body = json.loads(answer[8:])
    except ValueError:
        return "answer not JSON"
    if code == 0:
        return "success"
    return "cni error" if isinstance(body.get("code"), int) else "answer without code"


def timed_add(killable: Killable, conf: dict[str, object], pod: str) -> tuple[int, object, float]:
    """ADD through the installed executable: (exit code, answer, seconds); code -1 when
    no answer came within ADD_GIVE_UP seconds."""
    started = time.monotonic()
    proc = subprocess.Popen(
        ["nsenter", f"--net={killable.chain.node}", killable.exe],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=killable.env("ADD", pod, "after-fuzz"),
    )
    try:
        out, _ = proc.communicate(json.dumps(conf).encode(), timeout=ADD_GIVE_UP)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return -1, None, time.monotonic() - started
    elapsed = time.monotonic() - started
    return proc.returncode, json.loads(out) if out.strip() else None, elapsed


def test_fuzz_the_agent_socket(
    agent: tuple[subprocess.Popen[bytes], str],
    node_netns: str,
    pod_netns: Callable[[], str],
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    proc, socket_path = agent
    bin_dir = tmp_path / "bin"
    install_executables(str(bin_dir), agent_socket=socket_path)
    chain = ChainNode(node=node_netns, root=tmp_path, bin_dir=bin_dir)
    conf = chain.flannel_conf("1.1.0")
    killable = Killable(chain)
    # one real pod first: everything warm, then the base thread count
    first_pod = pod_netns()
    code, out, _ = killable.run("ADD", conf, first_pod, "warm", -1)
    assert code == 0, out
    killable.run("DEL", conf, first_pod, "warm", -1)
    time.sleep(0.5)
    base_threads = agent_threads(proc.pid)

    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    rng = random.Random(SEED)
    fuzzer = Fuzzer(rng, conf, fifo)
    recipes = [fuzzer.make() for _ in range(REQUESTS)]
    slow = []
    for _ in range(SLOW_CLIENTS):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(socket_path)
        sock.send(MAGIC[:1])
        slow.append(sock)

    budget = Budget(BUDGET)
    outcomes: Counter[str] = Counter()
    by_kind: dict[str, Counter[str]] = {}
    lock = threading.Lock()

    def one(recipe: tuple[str, bytes]) -> None:
        if budget.over():
            return
        kind, payload = recipe
        outcome = throw(socket_path, payload)
        with lock:
            outcomes[outcome] += 1
            by_kind.setdefault(kind, Counter())[outcome] += 1

    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(one, recipes))
        fuzz_seconds = time.monotonic() - started
        alive_after_fuzz = proc.poll() is None

        # A real pod, with the slow clients still connected on our side.
        pod = pod_netns()
        code, add_answer, add_seconds = timed_add(killable, conf, pod)
        add_ok = code == 0
        if add_ok:
            killable.run("DEL", conf, pod, "after-fuzz", -1)
    finally:
        for sock in slow:
            sock.close()

    deadline = time.monotonic() + 15
    threads = agent_threads(proc.pid) if proc.poll() is None else -1
    while threads > base_threads and time.monotonic() < deadline:
        time.sleep(0.2)
        threads = agent_threads(proc.pid)

    sent = sum(outcomes.values())
    figures = {
        "requests": sent,
        "slow_clients": SLOW_CLIENTS,
        "answered_with_cni_error": outcomes["cni error"],
        "closed_without_answer": outcomes["closed"],
        "no_answer_within_5s": outcomes["no answer in time"],
        "bad_answers": outcomes["garbled answer"]
        + outcomes["answer not JSON"]
        + outcomes["answer without code"],
        "connect_failures": sum(v for k, v in outcomes.items() if k.startswith("connect failed")),
        "agent_alive": int(alive_after_fuzz and proc.poll() is None),
        "add_after_fuzz_ok": int(add_ok),
        "add_after_fuzz_ms": round(add_seconds * 1000, 1),
        "threads_base": base_threads,
        "threads_over_base_after": threads - base_threads,
        "fuzz_seconds": round(fuzz_seconds, 1),
    }
    limits = {
        "requests": Limit(least=REQUESTS),
        "no_answer_within_5s": Limit(most=0),
        "bad_answers": Limit(most=0),
        "connect_failures": Limit(most=0),
        "agent_alive": Limit(least=1),
        "add_after_fuzz_ok": Limit(least=1),
        "add_after_fuzz_ms": Limit(most=ADD_WITHIN_MS),
        "threads_over_base_after": Limit(most=0),
    }
    notes = {
        "outcomes_by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
        "add_answer": add_answer if not add_ok else None,
        "stopped_early_by_budget": budget.over(),
    }
    regressions = record("socket-fuzz", figures, limits, started=started, notes=notes)
    assert not regressions, regressions

"""Start a throwaway etcd (one member or a cluster) on loopback, for tests, benchmarks and
the lab: free ports, a temporary data dir per member, fast election flags, stopped by PID.

The fast flags (`--heartbeat-interval=10 --election-timeout=100`) make a single member
ready in about 0.1 s and a new leader take well under a second; fine on loopback.
Watches get a progress notification every PROGRESS_NOTIFY_INTERVAL, well inside the
client's watch read deadline, so a quiet watch is never mistaken for a dead connection.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from podnet.store._errors import StoreError, StoreUnavailable

ETCD_BINARY = "etcd"
READY_TIMEOUT = 20.0
PROGRESS_NOTIFY_INTERVAL = "5s"


class EtcdNotInstalled(StoreError):
    pass


@dataclass(frozen=True)
class TLSFiles:
    """Server certificate and key, and the CA that clients (and members) must present."""

    ca: str
    cert: str
    key: str


@dataclass
class _Member:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None


@dataclass
class LocalEtcd:
    """`members` etcd processes forming one cluster on 127.0.0.1."""

    members: int = 1
    tls: TLSFiles | None = None
    base_dir: Path | None = None
    extra_args: tuple[str, ...] = ()  # more etcd flags, e.g. ("--auth-token-ttl=1",)
    _members: list[_Member] = field(default_factory=list)
    _own_base_dir: bool = False

    @staticmethod
    def binary() -> str:
        path = shutil.which(ETCD_BINARY) or (
            "/usr/bin/etcd" if os.access("/usr/bin/etcd", os.X_OK) else None
        )
        if path is None:
            raise EtcdNotInstalled("etcd is not installed (Debian package etcd-server)")
        return path

    @property
    def client_scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def endpoints(self) -> list[str]:
        return [f"{self.client_scheme}://127.0.0.1:{m.client_port}" for m in self._members]

    @property
    def url(self) -> str:
        """The podnet store URL for this cluster."""
        hosts = ",".join(f"127.0.0.1:{m.client_port}" for m in self._members)
        if self.tls is None:
            return f"etcd://{hosts}"
        return f"etcds://{hosts}?ca={self.tls.ca}&cert={self.tls.cert}&key={self.tls.key}"

    def start(self) -> LocalEtcd:
        binary = self.binary()
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="pn-etcd-"))
            self._own_base_dir = True
        # Ports are picked free and then handed over, so another process may grab one in
        # between; a member that dies at start is retried with fresh ports.
        for attempt in range(3):
            self._members = self._plan(attempt)
            for index in range(self.members):
                self._spawn(binary, index, initial_state="new")
            try:
                self.wait_ready()
                return self
            except StoreUnavailable:
                self.stop(remove=False)
        raise StoreUnavailable(f"etcd did not start; see logs under {self.base_dir}")

    def _plan(self, attempt: int) -> list[_Member]:
        assert self.base_dir is not None
        ports = _free_ports(2 * self.members)
        members = []
        for i in range(self.members):
            run_dir = self.base_dir / f"try{attempt}"
            members.append(
                _Member(
                    name=f"m{i}",
                    client_port=ports[2 * i],
                    peer_port=ports[2 * i + 1],
                    data_dir=run_dir / f"m{i}.data",
                    log_path=run_dir / f"m{i}.log",
                )
            )
        return members

    def _spawn(self, binary: str, index: int, *, initial_state: str) -> None:
        member = self._members[index]
        member.data_dir.parent.mkdir(parents=True, exist_ok=True)
        cluster = ",".join(f"{m.name}=http://127.0.0.1:{m.peer_port}" for m in self._members)
        client_url = f"{self.client_scheme}://127.0.0.1:{member.client_port}"
        args = [
            binary,
            f"--name={member.name}",
            f"--data-dir={member.data_dir}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls=http://127.0.0.1:{member.peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{member.peer_port}",
            f"--initial-cluster={cluster}",
            f"--initial-cluster-state={initial_state}",
            f"--initial-cluster-token=pn-{os.getpid()}-{id(self)}",
            "--heartbeat-interval=10",
            "--election-timeout=100",
            "--log-level=warn",
            f"--experimental-watch-progress-notify-interval={PROGRESS_NOTIFY_INTERVAL}",
            *self.extra_args,
        ]
        if self.tls is not None:
            args += [
                f"--cert-file={self.tls.cert}",
                f"--key-file={self.tls.key}",
                f"--trusted-ca-file={self.tls.ca}",
                "--client-cert-auth",
            ]
        with open(member.log_path, "ab") as log:
            member.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Until every running member reports healthy (a leader exists)."""
        deadline = time.monotonic() + timeout
        with self._http() as client:
            for member in self._members:
                if member.process is None:
                    continue
                url = f"{self.client_scheme}://127.0.0.1:{member.client_port}/health"
                while True:
                    if member.process.poll() is not None:
                        raise StoreUnavailable(f"etcd member {member.name} exited at start")
                    try:
                        if client.get(url).json().get("health") == "true":
                            break
                    except (httpx.HTTPError, ValueError):
                        pass  # not listening yet
                    if time.monotonic() > deadline:
                        raise StoreUnavailable(f"etcd member {member.name} not healthy in time")
                    time.sleep(0.02)

    def _http(self) -> httpx.Client:
        if self.tls is None:
            return httpx.Client(timeout=1.0)
        ctx = ssl.create_default_context(cafile=self.tls.ca)
        ctx.load_cert_chain(self.tls.cert, self.tls.key)
        return httpx.Client(timeout=1.0, verify=ctx)

    def leader(self) -> int:
        """Index of the member that is leader now."""
        with self._http() as client:
            for index, member in enumerate(self._members):
                if member.process is None or member.process.poll() is not None:
                    continue
                url = f"{self.client_scheme}://127.0.0.1:{member.client_port}"
                try:
                    status = client.post(url + "/v3/maintenance/status", json={}).json()
                except (httpx.HTTPError, ValueError):
                    continue
                if status.get("leader") and status["leader"] == status["header"]["member_id"]:
                    return index
        raise StoreUnavailable("etcd: no leader among the running members")

    def running(self, index: int) -> bool:
        """Whether member `index` has a process (not killed, or restarted since)."""
        process = self._members[index].process
        return process is not None and process.poll() is None

    def kill(self, index: int) -> None:
        """SIGKILL one member (by PID), as a crash would."""
        member = self._members[index]
        if member.process is not None:
            member.process.send_signal(signal.SIGKILL)
            member.process.wait()
            member.process = None

    def restart(self, index: int) -> None:
        """Start a killed member again on its old data dir and ports."""
        self._spawn(self.binary(), index, initial_state="existing")

    def stop(self, *, remove: bool = True) -> None:
        for member in self._members:
            process = member.process
            if process is None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            member.process = None
        if remove and self._own_base_dir and self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> LocalEtcd:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()

"""The lab's daemons: started in sessions of their own, recorded by PID file, recognised by
a marker in their environment, and stopped (SIGTERM, then SIGKILL) by those files alone, so
that `down` stops exactly what `up` started, also after a crash, and never anything else.

A daemon spawned with `restart=True` also leaves its recipe (argv, log, environment, and
the listening sockets it is handed) in specs/<name>.json, from which the lab's restarter
(`_restarter`) starts it again when it dies. A socket is described by where to bind it
(a network namespace, an address, the port it got the first time), so a daemon that
listens in several namespaces (the API server) is restarted on the same addresses.
Stopping a daemon on purpose removes its recipe first; recipes and PID files change
only under the lab's lock (supervise.lock), so the restarter never revives a daemon that
is being stopped, nor starts a second copy of one being started.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from podnet.cni import LOCK_DIR_ENV, atomic_write
from podnet.lab._errors import LabError
from podnet.lab._host import reap
from podnet.netlink import run_in_netns

LAB_MARKER = "PODNET_LAB"  # in the environment of every process a lab starts
LOCK_TIMEOUT = 30.0  # the longest a stop (SIGTERM wait) holds the lock is 10 s
_FIRST_HIGH_FD = 100
_BACKLOG = 128


@dataclass(frozen=True)
class Listener:
    """A TCP socket a daemon is handed, bound and listening: in network namespace
    `netns` (None: this process's), on host:port (port 0: any, fixed once bound)."""

    host: str
    port: int
    netns: str | None = None

    def bind(self) -> socket.socket:
        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, self.port))
                sock.listen(_BACKLOG)
            except OSError:
                sock.close()
                raise
            return sock

        return make() if self.netns is None else run_in_netns(self.netns, make)

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "netns": self.netns}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Listener:
        return cls(str(data["host"]), int(data["port"]), data.get("netns"))


def podnet_argv(*args: str) -> list[str]:
    """The command line of podnet's CLI, run by this interpreter."""
    return [sys.executable, "-m", "podnet.cli.main", *args]


class Supervisor:
    def __init__(self, lab_dir: str):
        self.lab_dir = lab_dir
        self.pids_dir = os.path.join(lab_dir, "pids")
        self.logs_dir = os.path.join(lab_dir, "logs")
        self.specs_dir = os.path.join(lab_dir, "specs")
        self._listeners: dict[str, list[Listener]] = {}  # of daemons without a recipe

    def plugin_env(self) -> dict[str, str]:
        """What every plugin the lab's daemons run gets: one log file for the lab, and
        attachment locks of the lab's own. On a node they live on /run, a tmpfs emptied
        at boot; here the lab's end is the boot: a lab killed with its pods (no DEL)
        must not leave their lock files in the machine's /run."""
        return {
            "PODNET_LOG_FILE": os.path.join(self.lab_dir, "cni.log"),
            LOCK_DIR_ENV: os.path.join(self.lab_dir, "attachments"),
        }

    def pid_file(self, what: str) -> str:
        return os.path.join(self.pids_dir, f"{what}.pid")

    def log_path(self, what: str) -> str:
        return os.path.join(self.logs_dir, f"{what}.log")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The lab's lock over recipes and PID files (bounded wait)."""
        os.makedirs(self.lab_dir, exist_ok=True)
        with open(os.path.join(self.lab_dir, "supervise.lock"), "a") as handle:
            deadline = time.monotonic() + LOCK_TIMEOUT
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LabError(
                            f"the lab's process lock is held for over {LOCK_TIMEOUT:g}s"
                        ) from None
                    time.sleep(0.02)
            yield  # closing the file lets the lock go

    def spawn(
        self,
        what: str,
        argv: Sequence[str],
        log: str,
        env: dict[str, str] | None = None,
        *,
        restart: bool = False,
        listeners: Sequence[Listener] = (),
    ) -> int:
        """Start a daemon of the lab in a session of its own (a Ctrl-C in the terminal
        is for the CLI only), output appended to `log`, recorded in a PID file. No Popen
        object: the daemon outlives the command that started it. `env` replaces this
        process's environment (containerd hands its own to every plugin). With
        `restart`, the lab's restarter starts it again whenever it dies. `listeners`
        are bound here and become the daemon's fds 3, 4, ... (sockets in other
        namespaces); `listeners_of` tells the ports they got."""
        base = env if env is not None else {**os.environ, **self.plugin_env()}
        env = {**base, LAB_MARKER: self.lab_dir}
        with self.locked():
            sockets = _bind_all(listeners)
            try:
                bound = [
                    replace(spec, port=int(sock.getsockname()[1]))
                    for spec, sock in zip(listeners, sockets, strict=True)
                ]
                recipe = {
                    "argv": list(argv),
                    "log": log,
                    "env": env,
                    "listeners": [spec.to_json() for spec in bound],
                }
                if restart:
                    os.makedirs(self.specs_dir, mode=0o700, exist_ok=True)
                    atomic_write(self.spec_file(what), json.dumps(recipe).encode(), mode=0o600)
                else:
                    self._listeners[what] = bound
                return self._spawn(what, argv, log, env, [s.fileno() for s in sockets])
            finally:
                for sock in sockets:
                    sock.close()

    def listeners_of(self, what: str) -> list[Listener]:
        """The sockets `what` was handed, with the ports they got."""
        if what in self._listeners:
            return list(self._listeners[what])
        try:
            with open(self.spec_file(what)) as handle:
                recipe = json.load(handle)
        except FileNotFoundError:
            return []
        return [Listener.from_json(item) for item in recipe.get("listeners") or []]

    def spec_file(self, what: str) -> str:
        return os.path.join(self.specs_dir, f"{what}.json")

    def restartable(self) -> list[str]:
        """The daemons the restarter keeps running (those with a recipe)."""
        try:
            names = os.listdir(self.specs_dir)
        except FileNotFoundError:
            return []
        return sorted(n[: -len(".json")] for n in names if n.endswith(".json"))

    def respawn(self, what: str) -> int | None:
        """Start `what` again from its recipe, unless it runs or was stopped on purpose
        meanwhile (then None). For the restarter."""
        with self.locked():
            if self.alive(what):
                return None
            try:
                with open(self.spec_file(what)) as handle:
                    recipe: dict[str, Any] = json.load(handle)
            except FileNotFoundError:
                return None
            listeners = [Listener.from_json(item) for item in recipe.get("listeners") or []]
            sockets = _bind_all(listeners)
            try:
                return self._spawn(
                    what, recipe["argv"], recipe["log"], recipe["env"],
                    [s.fileno() for s in sockets],
                )  # fmt: skip
            finally:
                for sock in sockets:
                    sock.close()

    def _forget(self, names: Sequence[str]) -> None:
        with self.locked():
            for what in names:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.spec_file(what))

    def _spawn(
        self,
        what: str,
        argv: Sequence[str],
        log: str,
        env: dict[str, str],
        pass_fds: Sequence[int] = (),
    ) -> int:
        os.makedirs(os.path.dirname(log), exist_ok=True)
        os.makedirs(self.pids_dir, exist_ok=True)
        # Copies above every target first, so that no dup2 overwrites a source not yet used.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _FIRST_HIGH_FD) for fd in pass_fds]
        try:
            pid = os.posix_spawnp(
                argv[0],
                list(argv),
                env,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
                    (os.POSIX_SPAWN_DUP2, 1, 2),
                    *[(os.POSIX_SPAWN_DUP2, fd, 3 + i) for i, fd in enumerate(high)],
                ],
                setsid=True,
            )
        finally:
            for fd in high:
                os.close(fd)
        with open(self.pid_file(what), "w") as handle:
            handle.write(f"{pid}\n")
        return pid

    def pid_files(self) -> list[str]:
        try:
            names = os.listdir(self.pids_dir)
        except FileNotFoundError:
            return []
        return sorted(os.path.join(self.pids_dir, f) for f in names if f.endswith(".pid"))

    def our_pid(self, pid_file: str) -> int | None:
        """The PID in `pid_file` if that process is still ours (its environment carries
        this lab's marker); a recycled PID belongs to someone else, a zombie is dead."""
        try:
            with open(pid_file) as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            return None
        marker = f"{LAB_MARKER}={self.lab_dir}".encode()
        for _ in range(50):
            try:
                with open(f"/proc/{pid}/stat", "rb") as handle:
                    state = handle.read().rsplit(b")", 1)[1].split()[0]
                with open(f"/proc/{pid}/environ", "rb") as handle:
                    environ = handle.read()
            except (OSError, IndexError):
                return None
            if state == b"Z":
                return None
            if environ:
                return pid if marker in environ.split(b"\0") else None
            time.sleep(0.005)  # an empty environment: caught in the middle of exec
        return None

    def alive(self, what: str) -> bool:
        return self.our_pid(self.pid_file(what)) is not None

    def stop_all(self, timeout: float = 5.0) -> list[str]:
        self._forget(self.restartable())  # nothing is restarted from here on
        return self.stop_pid_files(self.pid_files(), timeout)

    def stop(self, what: str, timeout: float = 10.0) -> None:
        """SIGTERM one daemon of the lab and wait for it to go (SIGKILL after `timeout`);
        the restarter lets it be."""
        self._forget([what])
        self.stop_pid_files([self.pid_file(what)], timeout)

    def stop_pid_files(self, pid_files: Sequence[str], timeout: float) -> list[str]:
        """SIGTERM the lab's daemons of `pid_files`, all at once, and wait for them to go
        (SIGKILL after `timeout`); their PID files are removed. Returns the names of
        those that were running."""
        stopped = []
        pids = {}
        for pid_file in pid_files:
            pid = self.our_pid(pid_file)
            if pid is not None:
                pids[pid_file] = pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for pid_file, pid in pids.items():
            while self.our_pid(pid_file) is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.our_pid(pid_file) is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            reap(pid)
            stopped.append(os.path.basename(pid_file)[: -len(".pid")])
        for pid_file in pid_files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(pid_file)
        return stopped

    def last_words(self, what: str) -> str:
        """The last line a daemon logged, and where the rest is."""
        path = self.log_path(what)
        try:
            with open(path, errors="replace") as handle:
                lines = [line.strip() for line in handle if line.strip()]
        except OSError:
            lines = []
        return f"{lines[-1] if lines else 'no output'} (log: {path})"


def _bind_all(listeners: Sequence[Listener]) -> list[socket.socket]:
    sockets: list[socket.socket] = []
    try:
        for spec in listeners:
            sockets.append(spec.bind())
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets

"""The node IPAM controller through the Kubernetes API (see bench/nodeipam.py's docstring):
`podnet apiserver run` in its own process over a store, the controller in this process,
registering processes (kubelets) and a watch that records when each podCIDR appears."""

from __future__ import annotations

import json
import multiprocessing
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench import _podcidrs as podcidrs
from podnet.apiserver import (
    CONTROLLER_MANAGER,
    MASTERS,
    ensure_serving_certs,
    write_kubeconfig,
    write_token_file,
)
from podnet.nodeipam import CIDR_UPDATE_WORKERS, KubeController, kube_client, parse_config

_READY_SECONDS = 60.0


class _APIServer:
    """`podnet apiserver run` on a loopback port, with an admin and a controller token."""

    def __init__(self, store_url: str, work: Path) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.pki = ensure_serving_certs(str(work / "pki"), ["127.0.0.1"])
        self.tokens = {"admin": secrets.token_hex(16), "controller": secrets.token_hex(16)}
        token_file = str(work / "tokens.csv")
        write_token_file(
            token_file,
            [
                (self.tokens["admin"], "kubernetes-admin", "admin", (MASTERS,)),
                (self.tokens["controller"], CONTROLLER_MANAGER, "controller", ()),
            ],
        )
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"https://127.0.0.1:{port}"
        self.kubeconfig = str(work / "controller.kubeconfig")
        write_kubeconfig(
            self.kubeconfig,
            server=self.url,
            ca_cert=self.pki.ca_cert,
            token=self.tokens["controller"],
            user=CONTROLLER_MANAGER,
        )
        self._log = open(work / "apiserver.log", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "podnet.cli.main", "apiserver", "run",
                "--listen", f"127.0.0.1:{port}", "--store", store_url,
                "--cert-dir", str(work / "pki"), "--token-file", token_file,
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )  # fmt: skip
        deadline = time.monotonic() + _READY_SECONDS
        with self.client("admin") as client:
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise SystemExit(f"the API server did not start; see {work}/apiserver.log")
                time.sleep(0.05)

    def client(self, who: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            verify=ssl.create_default_context(cafile=self.pki.ca_cert),
            headers={"Authorization": f"Bearer {self.tokens[who]}"},
            timeout=60,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def _register(url: str, ca: str, token: str, names: list[str], start: Any, out: Any) -> None:
    """A writer process: register `names` as kubelets do; report when each was sent."""
    client = httpx.Client(
        base_url=url,
        verify=ssl.create_default_context(cafile=ca),
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    client.get("/healthz")  # connected, TLS done: registering starts from here
    out.put(("ready", None))
    start.wait()
    sent: dict[str, float] = {}
    for name in names:
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name},
            "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.1"}]},
        }
        sent[name] = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process
        response = client.post("/api/v1/nodes", json=body)
        if response.status_code != 201:
            out.put(("error", f"{name}: {response.status_code} {response.text[:200]}"))
            return
    client.close()
    out.put(("sent", sent))


class _Observer:
    """Watches Nodes through the API (raw JSON lines) and records each first podCIDR."""

    def __init__(self, api: _APIServer, expected: int) -> None:
        self.api = api
        self.expected = expected
        self.cidrs: dict[str, str] = {}
        self.seen_at: dict[str, float] = {}
        self.done = threading.Event()
        self.stop = threading.Event()
        with api.client("admin") as client:
            self._version = client.get("/api/v1/nodes").json()["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        client = self.api.client("admin")
        while not self.stop.is_set() and not self.done.is_set():
            params = {"watch": "true", "resourceVersion": self._version, "timeoutSeconds": "30"}
            try:
                with client.stream("GET", "/api/v1/nodes", params=params, timeout=None) as r:
                    for line in r.iter_lines():
                        if line:
                            self._on(json.loads(line))
                        if self.done.is_set() or self.stop.is_set():
                            break
            except httpx.HTTPError:
                time.sleep(0.2)
        client.close()

    def _on(self, event: dict[str, Any]) -> None:
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        self._version = meta.get("resourceVersion", self._version)
        cidr = (obj.get("spec") or {}).get("podCIDR")
        name = meta.get("name")
        if cidr and name and name not in self.cidrs:
            self.cidrs[name] = cidr
            self.seen_at[name] = time.monotonic()
            if len(self.cidrs) >= self.expected:
                self.done.set()


def bench_controller_api(
    store_url: str,
    nodes: int,
    writers: int,
    work: Path,
    *,
    backlog: bool,
    workers: int = CIDR_UPDATE_WORKERS,
) -> dict[str, Any]:
    """Time from the first registration (backlog: from the controller's start, all nodes
    registered before) until every node's podCIDR is seen through the API."""
    api = _APIServer(store_url, work)
    stop = threading.Event()
    runner: threading.Thread | None = None
    controller = KubeController(
        kube_client(api.kubeconfig),
        parse_config(podcidrs.CLUSTER_CIDR, node_cidr_mask_size=podcidrs.NODE_MASK),
        workers=workers,
    )
    observer: _Observer | None = None
    try:
        observer = _Observer(api, nodes)

        def start_controller() -> None:
            nonlocal runner
            runner = threading.Thread(target=controller.run, args=(stop,), name="controller")
            runner.start()
            if not controller.synced.wait(_READY_SECONDS):
                raise SystemExit("the controller did not list the nodes")

        if not backlog:
            start_controller()
        names = podcidrs.node_names(nodes)
        context = multiprocessing.get_context("spawn")
        go, out = context.Event(), context.Queue()
        procs = [
            context.Process(
                target=_register,
                args=(api.url, api.pki.ca_cert, api.tokens["admin"], names[i::writers], go, out),
            )
            for i in range(writers)
        ]
        for proc in procs:
            proc.start()
        for _ in procs:  # every writer has started its interpreter and connected
            kind, payload = out.get(timeout=_READY_SECONDS)
            if kind != "ready":
                raise SystemExit(f"registration failed: {payload}")
        began = time.monotonic()
        go.set()
        sent: dict[str, float] = {}
        for _ in procs:
            kind, payload = out.get(timeout=podcidrs.wait_seconds(nodes))
            if kind == "error":
                raise SystemExit(f"registration failed: {payload}")
            sent.update(payload)
        registered = time.monotonic()
        register_seconds = registered - began
        for proc in procs:
            proc.join()
        if backlog:
            began = time.monotonic()
            start_controller()
        finished = observer.done.wait(timeout=podcidrs.wait_seconds(nodes))
        done = time.monotonic()
        observer.stop.set()
        podcidrs.require_one_each(finished, observer.cidrs, nodes)
        start = {n: (began if backlog else sent[n]) for n in names}
        latencies = sorted(observer.seen_at[n] - start[n] for n in names)
        result: dict[str, Any] = {
            "nodes": nodes,
            "writers": writers,
            "patch_workers": workers,
            "mode": "backlog" if backlog else "registered_while_running",
            "register_seconds": round(register_seconds, 3),
            "all_assigned_seconds": round(done - began, 3),
            "assignments_per_second": round(nodes / (done - began), 1),
            "to_podcidr_ms": podcidrs.latency_ms(latencies),
            "controller": {
                "allocations": controller.counters.allocations,
                "conflicts": controller.counters.cas_conflicts,
                "relists": controller.counters.resyncs,
            },
        }
        return result
    finally:
        stop.set()
        if runner is not None:
            runner.join(timeout=30)
        controller.client.close()  # and the watch's connection with it
        if observer is not None:
            observer.stop.set()
        api.stop()  # ends the observer's watch
        if observer is not None:
            observer.join(timeout=30)

"""The lab's Kubernetes API server: one `podnet apiserver run` serving the lab's store on
the control-plane address (192.0.2.1:6443, inside the lab, where nodes reach it) and on a
loopback port of this machine (for the user's kubectl).

One process listens in both namespaces: the lab binds each socket in its namespace and
hands both to the server (a socket stays in the namespace it was opened in). The server
itself runs in the control-plane namespace, where the lab's etcd listens. The lab's
restarter starts it again when it dies, on sockets bound again on the same ports.

Identities and their tokens (kube-apiserver's token file, 0600 in the lab dir): the admin
(`system:masters`, the user's kubeconfig), the controller manager, the scheduler, and
`system:node:NAME` for every node; each gets a kubeconfig beside it.
"""

from __future__ import annotations

import csv
import http.client
import json
import os
import secrets
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass

from lightkube import ApiError
from lightkube.models.core_v1 import NodeAddress, NodeStatus
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Node

from podnet.agent import kube_client
from podnet.apiserver import (
    CONTROLLER_MANAGER,
    MASTERS,
    NODES_GROUP,
    SCHEDULER,
    ensure_serving_certs,
    write_kubeconfig,
    write_token_file,
)
from podnet.lab._errors import LabError
from podnet.lab._supervise import Listener, Supervisor, podnet_argv
from podnet.lab._topology import CONTROL_PLANE

APISERVER = "apiserver"  # the daemon's name among the lab's processes
APISERVER_PORT = 6443
ADMIN = "kubernetes-admin"


@dataclass(frozen=True)
class APIServerFiles:
    dir: str

    @property
    def tokens(self) -> str:
        return os.path.join(self.dir, "tokens.csv")

    @property
    def pki(self) -> str:
        return os.path.join(self.dir, "pki")

    @property
    def admin_kubeconfig(self) -> str:
        return os.path.join(self.dir, "admin.kubeconfig")

    def kubeconfig(self, user: str) -> str:
        """The identity's kubeconfig naming the control-plane address (inside the lab)."""
        return os.path.join(self.dir, f"{user.replace(':', '-')}.kubeconfig")

    def host_kubeconfig(self, user: str) -> str:
        """The identity's kubeconfig naming the loopback listener (on this machine)."""
        return os.path.join(self.dir, f"{user.replace(':', '-')}.host.kubeconfig")


def node_user(node: str) -> str:
    return f"system:node:{node}"


def add_identities(files: APIServerFiles, nodes: Sequence[str], port: int) -> None:
    """Tokens and kubeconfigs for nodes joining; the API server reads the file again."""
    rows = _read_rows(files.tokens)
    known = {user for _token, user, _uid, _groups in rows}
    ca = os.path.join(files.pki, "ca.crt")
    for node in nodes:
        user = node_user(node)
        if user in known:
            continue
        token = secrets.token_urlsafe(24)
        rows.append((token, user, user, (NODES_GROUP,)))
        _node_kubeconfigs(files, user, token, ca, port)
    write_token_file(files.tokens, rows)


def _read_rows(path: str) -> list[tuple[str, str, str, tuple[str, ...]]]:
    with open(path, encoding="utf-8") as handle:
        return [
            (r[0], r[1], r[2], tuple(g for g in r[3].split(",") if g) if len(r) > 3 else ())
            for r in csv.reader(handle)
            if r
        ]


def _node_kubeconfigs(files: APIServerFiles, user: str, token: str, ca: str, port: int) -> None:
    inside = f"https://{CONTROL_PLANE.ip}:{APISERVER_PORT}"
    write_kubeconfig(files.kubeconfig(user), server=inside, ca_cert=ca, token=token, user=user)
    write_kubeconfig(
        files.host_kubeconfig(user),
        server=f"https://127.0.0.1:{port}",
        ca_cert=ca,
        token=token,
        user=user,
    )


def start_apiserver(
    supervisor: Supervisor,
    *,
    lab_dir: str,
    control_plane_netns: str,
    store_url: str,
    nodes: Sequence[str],
    timeout: float,
) -> tuple[APIServerFiles, int]:
    """Start the lab's API server and wait until it answers; returns its files and the
    loopback port the user's kubeconfig names."""
    files = APIServerFiles(os.path.join(lab_dir, "apiserver"))
    os.makedirs(files.dir, mode=0o700, exist_ok=True)
    identities = [
        (ADMIN, (MASTERS,)),
        (CONTROLLER_MANAGER, ()),
        (SCHEDULER, ()),
        *[(f"system:node:{node}", (NODES_GROUP,)) for node in nodes],
    ]
    tokens = {user: secrets.token_urlsafe(24) for user, _ in identities}
    write_token_file(
        files.tokens, [(tokens[user], user, user, groups) for user, groups in identities]
    )
    serving = ensure_serving_certs(files.pki, [str(CONTROL_PLANE.ip), "127.0.0.1"])
    argv = [
        "nsenter",
        f"--net={control_plane_netns}",
        *podnet_argv(
            "apiserver", "run", "--listen-fd", "3", "--listen-fd", "4",
            "--store", store_url, "--cert-dir", files.pki, "--token-file", files.tokens,
        ),
    ]  # fmt: skip
    # Both sockets are bound by the lab (each in its namespace) and, when the restarter
    # starts the API server again after a crash, bound again on the same ports.
    supervisor.spawn(
        APISERVER,
        argv,
        supervisor.log_path(APISERVER),
        restart=True,
        listeners=[
            Listener(str(CONTROL_PLANE.ip), APISERVER_PORT, control_plane_netns),
            Listener("127.0.0.1", 0),
        ],
    )
    port = supervisor.listeners_of(APISERVER)[1].port
    for user, _groups in identities:
        if user == ADMIN:
            write_kubeconfig(
                files.admin_kubeconfig,
                server=f"https://127.0.0.1:{port}",
                ca_cert=serving.ca_cert,
                token=tokens[user],
                user=user,
            )
        else:
            _node_kubeconfigs(files, user, tokens[user], serving.ca_cert, port)
    _wait_healthy(supervisor, serving.ca_cert, port, timeout)
    return files, port


def _wait_healthy(supervisor: Supervisor, ca_cert: str, port: int, timeout: float) -> None:
    context = ssl.create_default_context(cafile=ca_cert)
    deadline = time.monotonic() + timeout
    while True:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=2, context=context)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        if not supervisor.alive(APISERVER):
            raise LabError(f"the API server exited: {supervisor.last_words(APISERVER)}")
        if time.monotonic() > deadline:
            raise LabError(f"the API server did not answer after {timeout:g}s")
        time.sleep(0.05)


_UNAUTHORIZED, _NOT_FOUND, _CONFLICT = 401, 404, 409


def write_net_conf(
    path: str, network: str, backend: str, *, ipv6_network: str | None = None
) -> None:
    """The cluster network config, as kube-flannel's ConfigMap holds it (net-conf.json);
    with `ipv6_network`, dual-stack as flannel's (EnableIPv6, IPv6Network)."""
    conf: dict[str, object] = {"Network": network}
    if ipv6_network:
        conf.update(EnableIPv6=True, IPv6Network=ipv6_network)
    conf["Backend"] = {"Type": backend}
    text = json.dumps(conf, indent=2) + "\n"
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def register_node(files: APIServerFiles, node: str, address: str, timeout: float = 10.0) -> None:
    """Create the node's Node object as its kubelet does: with its own identity, its
    InternalIP in status.addresses, retrying (as kubelet does) while the API server does
    not know the identity yet (it reads a token file that changed within a second). A node
    registered already is left as it is."""
    client = kube_client(files.host_kubeconfig(node_user(node)))
    body = Node(
        metadata=ObjectMeta(name=node),
        status=NodeStatus(addresses=[NodeAddress(type="InternalIP", address=address)]),
    )
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                client.create(body)
                return
            except ApiError as exc:
                if exc.status.code == _CONFLICT:
                    return
                if exc.status.code != _UNAUTHORIZED or time.monotonic() > deadline:
                    raise LabError(f"cannot register node {node}: {exc.status.message}") from None
            time.sleep(0.2)
    finally:
        client.close()


def delete_node(files: APIServerFiles, node: str) -> None:
    """`kubectl delete node NODE` (the admin's): nodeipam frees its podCIDR and the other
    agents drop its routes. A node that is gone already is fine."""
    client = kube_client(files.admin_kubeconfig)
    try:
        client.delete(Node, node)
    except ApiError as exc:
        if exc.status.code != _NOT_FOUND:
            raise LabError(f"cannot delete node {node}: {exc.status.message}") from None
    finally:
        client.close()

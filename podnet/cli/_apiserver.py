"""The API server command.

    podnet apiserver run --token-file FILE [--listen HOST:PORT]... [--cert-dir DIR]
                         [--tls-san NAME]... [--store URL]
    podnet apiserver kubeconfig --token-file FILE --user USER --server URL [--cert-dir DIR]
                                -o PATH

`run` makes the CA and serving certificate in --cert-dir when they are missing (naming
every --listen host and --tls-san), serves until SIGINT/SIGTERM, and answers every
problem with one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Any

from podnet.apiserver import (
    APIServer,
    TokenFile,
    TokenFileError,
    Tokens,
    ensure_serving_certs,
    write_kubeconfig,
)
from podnet.cli._daemon import log_to_stderr, stop_on_signals
from podnet.store import STORE_ENV, StoreError, open_store, store_url

DEFAULT_CERT_DIR = "/var/lib/podnet/pki"
DEFAULT_LISTEN = "127.0.0.1:6443"


class CommandError(Exception):
    """A problem the user must fix; printed as one line."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("apiserver", help="the Kubernetes API over the store")
    commands = parser.add_subparsers(dest="apiserver_command", metavar="COMMAND", required=True)
    run = commands.add_parser("run", help="serve the Kubernetes API (HTTPS, bearer tokens)")
    run.add_argument(
        "--store", metavar="URL", help=f"cluster store (default: ${STORE_ENV} or sqlite)"
    )
    run.add_argument(
        "--listen",
        action="append",
        metavar="HOST:PORT",
        help=f"address to serve on (repeatable; default {DEFAULT_LISTEN})",
    )
    run.add_argument(
        "--listen-fd",
        action="append",
        type=int,
        default=[],
        metavar="FD",
        help="serve on this inherited listening socket too (e.g. one bound in another "
        "network namespace; repeatable)",
    )
    run.add_argument("--cert-dir", default=DEFAULT_CERT_DIR, metavar="DIR")
    run.add_argument(
        "--tls-san",
        action="append",
        default=[],
        metavar="NAME",
        help="another name or IP the serving certificate names",
    )
    run.add_argument(
        "--token-file",
        required=True,
        metavar="FILE",
        help='token,user,uid,"group1,group2" per line (kube-apiserver\'s format)',
    )
    run.set_defaults(handler=_guarded(cmd_run))
    kubeconfig = commands.add_parser("kubeconfig", help="write a kubeconfig for one identity")
    kubeconfig.add_argument("--token-file", required=True, metavar="FILE")
    kubeconfig.add_argument("--user", required=True, help="the identity's user name")
    kubeconfig.add_argument("--server", required=True, metavar="URL")
    kubeconfig.add_argument("--cert-dir", default=DEFAULT_CERT_DIR, metavar="DIR")
    kubeconfig.add_argument("-o", "--output", required=True, metavar="PATH")
    kubeconfig.set_defaults(handler=_guarded(cmd_kubeconfig))


def _guarded(handler: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(handler(args))
        except (CommandError, StoreError, TokenFileError, OSError, ValueError) as exc:
            print(f"podnet: {exc}", file=sys.stderr)
            return 1

    return run


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise CommandError(f"--listen {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def inherited_socket(fd: int) -> socket.socket:
    """The listening TCP socket at `fd`, inherited from whoever started us."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise CommandError(f"--listen-fd {fd}: {exc.strerror or exc}") from exc
    if (
        sock.type != socket.SOCK_STREAM
        or sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0
    ):
        sock.detach()
        raise CommandError(f"--listen-fd {fd}: not a listening TCP socket")
    return sock


def cmd_run(args: argparse.Namespace) -> int:
    default = [] if args.listen_fd else [DEFAULT_LISTEN]
    listens = [parse_listen(text) for text in (args.listen or default)]
    sockets = [inherited_socket(fd) for fd in args.listen_fd]
    tokens = TokenFile(args.token_file)
    hosts = [h for h, _ in listens] + [str(s.getsockname()[0]) for s in sockets] + args.tls_san
    serving = ensure_serving_certs(args.cert_dir, hosts)
    log_to_stderr()
    stop = stop_on_signals()
    store = open_store(store_url(args.store))
    try:
        server = APIServer(store, tokens=tokens, serving=serving)
        try:
            for host, port in listens:
                server.listen(host, port)
            for sock in sockets:
                server.listen_on(sock)
            stop.wait()
        finally:
            server.close()
    finally:
        store.close()
    return 0


def cmd_kubeconfig(args: argparse.Namespace) -> int:
    tokens = Tokens.load(args.token_file)
    token = tokens.token_of(args.user)
    if token is None:
        raise CommandError(f"{args.token_file}: no token for user {args.user!r}")
    serving = ensure_serving_certs(args.cert_dir, [])
    write_kubeconfig(
        args.output, server=args.server, ca_cert=serving.ca_cert, token=token, user=args.user
    )
    print(args.output)
    return 0

"""`podnet agent ...`: the node agent's commands."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from podnet.agent import DEFAULT_SOCKET, CNIServer


def register(subparsers: Any) -> None:
    agent = subparsers.add_parser("agent", help="the node agent")
    verbs = agent.add_subparsers(dest="agent_command", metavar="COMMAND", required=True)
    serve = verbs.add_parser(
        "serve-cni", help="only serve the CNI socket the thin plugin executables talk to"
    )
    serve.add_argument("--socket", default=DEFAULT_SOCKET, help="unix socket path")
    serve.add_argument("--request-timeout", type=float, default=60.0)
    serve.set_defaults(handler=serve_cni)


def serve_cni(args: argparse.Namespace) -> int:
    server = CNIServer(args.socket, request_timeout=args.request_timeout)
    server.warm()
    try:
        server.start()
    except OSError as exc:
        print(f"podnet agent: cannot listen on {args.socket}: {exc.strerror}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    server.stop()
    return 0

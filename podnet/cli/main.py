"""The `podnet` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from podnet.cli import _agent, _apiserver, _cluster, _demo, _doctor, _install, _lab, _pod, _trace


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="podnet", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _install.register(subparsers)
    _agent.register(subparsers)
    _pod.register(subparsers)
    _demo.register(subparsers)
    _cluster.register(subparsers)
    _lab.register(subparsers)
    _apiserver.register(subparsers)
    _doctor.register(subparsers)
    _trace.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_usage(sys.stderr)
        return 2
    return int(handler(args))


if __name__ == "__main__":
    sys.exit(main())

"""`podnet install-cni`: what flannel's install-cni init containers do."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from podnet.cni import ALL_VERSIONS
from podnet.plugins._install import default_conflist, install_executables, write_conflist


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "install-cni", help="install podnet's CNI executables (and the conflist)"
    )
    parser.add_argument("--bin-dir", default="/opt/cni/bin", help="CNI bin dir")
    parser.add_argument(
        "--conf-dir", default=None, help="CNI conf dir for 10-flannel.conflist (omit: none)"
    )
    parser.add_argument("--cni-version", default="1.1.0", choices=ALL_VERSIONS)
    parser.add_argument(
        "--agent-socket",
        default="",
        help="unix socket of the node agent the executables hand requests to (omit: none)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        for path in install_executables(args.bin_dir, agent_socket=args.agent_socket):
            print(f"installed {path}")
        if args.conf_dir is not None:
            path = write_conflist(args.conf_dir, default_conflist(args.cni_version))
            print(f"wrote {path}")
    except OSError as exc:
        print(f"podnet install-cni: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0

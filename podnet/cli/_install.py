"""`podnet install-cni`: what flannel's install-cni init containers do."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from podnet.cni import ALL_VERSIONS
from podnet.plugins import default_conflist, install_executables, write_conflist
from podnet.runtime import DEFAULT_BIN_DIR


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "install-cni", help="install podnet's CNI executables (and the conflist)"
    )
    parser.add_argument("--bin-dir", default=DEFAULT_BIN_DIR, help="CNI bin dir")
    parser.add_argument(
        "--conf-dir", default=None, help="CNI conf dir for 10-flannel.conflist (omit: none)"
    )
    parser.add_argument("--cni-version", default="1.1.0", choices=ALL_VERSIONS)
    parser.add_argument(
        "--subnet-file",
        default="",
        help="subnet.env flannel reads (omit: its default, /run/flannel/subnet.env)",
    )
    parser.add_argument(
        "--cni-data-dir",
        default="",
        help="keep flannel's and host-local's state in DIR/flannel and DIR/networks "
        "(omit: their defaults under /var/lib/cni)",
    )
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
            # absolute: the runtime runs the plugins from a working dir of its own
            conflist = default_conflist(
                args.cni_version,
                subnet_file=os.path.abspath(args.subnet_file) if args.subnet_file else None,
                data_dir=os.path.abspath(args.cni_data_dir) if args.cni_data_dir else None,
            )
            path = write_conflist(args.conf_dir, conflist)
            print(f"wrote {path}")
    except OSError as exc:
        print(f"podnet install-cni: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0

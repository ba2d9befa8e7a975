"""`podnet doctor`: which of the well-known failures this node has, and the fix.

It runs in the caller's network namespace (the node's); `podnet lab doctor NODE` runs it
inside a lab node with that node's paths.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from ipaddress import IPv4Network
from typing import Any

from podnet.agent import DEFAULT_CNI_DATA_DIR, DEFAULT_SOCKET, DEFAULT_SUBNET_FILE
from podnet.cli._table import table
from podnet.doctor import (
    DEFAULT_GRACE,
    Doctor,
    DoctorConfig,
    Finding,
    Repair,
)
from podnet.runtime import DEFAULT_BIN_DIR, DEFAULT_CONF_DIR


def register(subparsers: Any) -> None:
    doctor = subparsers.add_parser(
        "doctor",
        help="find what keeps this node's pods from getting an IP, and fix what is safe",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_doctor_flags(doctor)
    doctor.set_defaults(handler=_run)


def add_doctor_flags(parser: argparse.ArgumentParser) -> None:
    """The flags `podnet doctor` takes (the lab passes its node's paths through them)."""
    paths = parser.add_argument_group("where to look")
    paths.add_argument("--conf-dir", default=DEFAULT_CONF_DIR, help="CNI network configs")
    paths.add_argument("--bin-dir", default=DEFAULT_BIN_DIR, help="CNI plugins")
    paths.add_argument("--subnet-file", default=DEFAULT_SUBNET_FILE, help="the agent's subnet.env")
    paths.add_argument(
        "--cni-data-dir", default=DEFAULT_CNI_DATA_DIR, help="the runtime's CNI cache dir"
    )
    paths.add_argument("--cni-socket", default=DEFAULT_SOCKET, help="the agent's CNI socket")
    paths.add_argument(
        "--healthz-port", type=int, default=None, help="the agent's health port (None: unchecked)"
    )
    paths.add_argument("--healthz-address", default="127.0.0.1", help="the agent's health address")
    node = parser.add_argument_group("what the node should have")
    node.add_argument(
        "--node-name",
        default=os.environ.get("NODE_NAME") or socket.gethostname(),
        help="this node's name, as its Node object ($NODE_NAME, else the hostname)",
    )
    node.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG") or None,
        help="read the Node objects through the API with this ($KUBECONFIG)",
    )
    node.add_argument(
        "--pod-cidr", type=IPv4Network, default=None, help="the node's podCIDR, without an API"
    )
    node.add_argument(
        "--cri-socket",
        default=None,
        help="the runtime's CRI socket: its sandboxes own reservations "
        "(unset: cached attachments with a live netns do)",
    )
    node.add_argument(
        "--grace",
        type=float,
        default=DEFAULT_GRACE,
        help="seconds a new reservation may go unowned (a pod being created)",
    )
    parser.add_argument("--fix", action="store_true", help="apply the fixes that are safe")
    parser.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help="output format"
    )


def config_from(args: argparse.Namespace) -> DoctorConfig:
    return DoctorConfig(
        conf_dir=args.conf_dir,
        bin_dir=args.bin_dir,
        subnet_file=args.subnet_file,
        cni_data_dir=args.cni_data_dir,
        cni_socket=args.cni_socket,
        healthz_port=args.healthz_port,
        healthz_address=args.healthz_address,
        node_name=args.node_name,
        kubeconfig=args.kubeconfig or "",
        pod_cidr=args.pod_cidr,
        cri_socket=args.cri_socket or "",
        grace=args.grace,
    )


def _run(args: argparse.Namespace) -> int:
    try:
        with Doctor(config_from(args)) as doctor:
            findings = doctor.examine()
            repairs: list[Repair] = []
            if args.fix and any(f.repair for f in findings):
                repairs = doctor.repair(findings)
                before, findings = findings, doctor.examine()
            else:
                before = []
    except OSError as exc:
        print(f"podnet doctor: {exc}", file=sys.stderr)
        return 1
    wrong = [f for f in findings if f.wrong]
    if args.output == "json":
        report = {
            "findings": [f.to_json() for f in findings],
            "repairs": [{"check": r.check, "done": r.done, "failed": r.failed} for r in repairs],
            "before": [f.to_json() for f in before],
            "problems": len(wrong),
        }
        print(json.dumps(report, indent=2))
    else:
        for repair in repairs:
            print(f"{'could not fix' if repair.failed else 'fixed'} {repair.check}: {repair.done}")
        if repairs:
            print()
        print(_text(findings))
    return 1 if wrong else 0


def _text(findings: list[Finding]) -> str:
    rows = [(f.status.upper(), f.check, f.message) for f in findings]
    lines = table(("STATUS", "CHECK", "FINDING"), rows).splitlines()
    out = [lines[0]]
    for line, finding in zip(lines[1:], findings, strict=True):
        out.append(line)
        if finding.wrong:
            out += [f"    evidence: {item}" for item in finding.evidence]
            if finding.fix:
                safe = " (safe: doctor --fix does it)" if finding.repair else ""
                out.append(f"    fix: {finding.fix}{safe}")
    wrong = [f for f in findings if f.wrong]
    fixable = [f for f in wrong if f.repair]
    if wrong:
        out.append(
            f"\n{len(wrong)} problem(s) found"
            + (f"; {len(fixable)} can be fixed with --fix" if fixable else "")
        )
    else:
        out.append("\nno problems found")
    return "\n".join(out)

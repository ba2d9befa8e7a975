"""`podnet pod ...` and `podnet cni ...`: the container-runtime side from the command line.

Every path is a flag with the real default, so the lab and the tests run on temp dirs.
The command runs in the caller's network namespace (the node's): use
`nsenter --net=NODE podnet pod run ...` to start a pod on a lab node.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from podnet.cli._table import table
from podnet.cni import CNIError, Result
from podnet.netlink import DEFAULT_NETNS_DIR, is_netns
from podnet.runtime import (
    DEFAULT_BIN_DIRS,
    DEFAULT_CACHE_DIR,
    DEFAULT_CONF_DIR,
    DEFAULT_STATE_DIR,
    DEFAULT_TIMEOUT,
    READY,
    PodRuntime,
    PortSpecError,
    ProcessExec,
    RuntimePaths,
    Sandbox,
    parse_port_mapping,
    pod_ips,
    port_capability_args,
)

Handler = Callable[[argparse.Namespace, PodRuntime], int]


def _path_flags() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("paths")
    group.add_argument("--conf-dir", default=DEFAULT_CONF_DIR, help="CNI network configs")
    group.add_argument(
        "--bin-dir",
        default=":".join(DEFAULT_BIN_DIRS),
        help="CNI plugin dirs, colon-separated (CNI_PATH)",
    )
    group.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR, help="libcni cache dir")
    group.add_argument("--netns-dir", default=DEFAULT_NETNS_DIR, help="where pod netns live")
    group.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help="pod sandbox records")
    group.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per plugin call"
    )
    return parent


def _pod_flags() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("name", metavar="NAME", help="pod name")
    parent.add_argument("-n", "--namespace", default="default", help="pod namespace")
    return parent


def _output_flag() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-o", "--output", choices=("text", "json"), default="text")
    return parent


def port_mapping(text: str) -> dict[str, Any]:
    """argparse's type for --port."""
    try:
        return parse_port_mapping(text)
    except PortSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def port_flag() -> argparse.ArgumentParser:
    """--port, repeatable: the pod's hostPorts, handed to CNI as portMappings."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "-p",
        "--port",
        dest="ports",
        action="append",
        type=port_mapping,
        default=[],
        metavar="[HOSTIP:]HOST:CONTAINER[/PROTO]",
        help="map a port of the node to the pod (repeatable; protocol tcp, udp or sctp)",
    )
    return parent


def register(subparsers: Any) -> None:
    paths, pod, output = _path_flags(), _pod_flags(), _output_flag()

    pod_parser = subparsers.add_parser("pod", help="pod sandboxes: run, ls, inspect, check, rm")
    pod_commands = pod_parser.add_subparsers(dest="pod_command", metavar="COMMAND", required=True)
    for name, handler, parents, help_text in (
        ("run", _run, [pod, paths, output, port_flag()], "create a pod sandbox and its network"),
        ("ls", _ls, [paths, output], "list pod sandboxes"),
        ("inspect", _inspect, [pod, paths], "a pod's record, netns and cached CNI result"),
        ("check", _check, [pod, paths], "CNI CHECK of a pod's network"),
        ("stop", _stop, [pod, paths], "tear down a pod's network (repeatable)"),
        ("rm", _rm, [pod, paths], "stop a pod and forget it"),
    ):
        sub = pod_commands.add_parser(name, parents=parents, help=help_text)
        sub.set_defaults(handler=_wrap(f"pod {name}", handler))

    cni_parser = subparsers.add_parser("cni", help="CNI runtime operations: gc, status")
    cni_commands = cni_parser.add_subparsers(dest="cni_command", metavar="COMMAND", required=True)
    for name, handler, help_text in (
        ("gc", _gc, "release what pods that no longer exist still hold"),
        ("status", _status, "is the default network ready for pods"),
    ):
        sub = cni_commands.add_parser(name, parents=[paths, output], help=help_text)
        sub.set_defaults(handler=_wrap(f"cni {name}", handler))


def _wrap(command: str, handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        def warn(message: str) -> None:
            print(f"podnet: warning: {_one_line(message)}", file=sys.stderr)

        paths = RuntimePaths(
            conf_dir=args.conf_dir,
            bin_dirs=tuple(d for d in args.bin_dir.split(":") if d),
            cache_dir=args.cache_dir,
            netns_dir=args.netns_dir,
            state_dir=args.state_dir,
        )
        runtime = PodRuntime(paths, exec_=ProcessExec(timeout=args.timeout), warn=warn)
        try:
            return handler(args, runtime)
        except (CNIError, OSError) as exc:
            print(f"podnet {command}: {_one_line(str(exc))}", file=sys.stderr)
            return 1

    return run


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2))


# ---- pod ------------------------------------------------------------------------------


def _run(args: argparse.Namespace, runtime: PodRuntime) -> int:
    run = runtime.run(args.name, args.namespace, capability_args=port_capability_args(args.ports))
    sandbox = run.sandbox
    if args.output == "json":
        out = run.result.to_json(run.result.cni_version)
        out.update(
            pod=sandbox.name,
            namespace=sandbox.namespace,
            sandboxId=sandbox.id,
            network=sandbox.network,
            netns=sandbox.netns,
            ip=sandbox.ip,
            podIPs=list(sandbox.ips),
        )
        _print_json(out)
    else:
        print(f"pod     {sandbox.key}")
        print(f"netns   {sandbox.netns}")
        print(f"ip      {', '.join(sandbox.ips)}")
    return 0


def _display_state(sandbox: Sandbox) -> str:
    if sandbox.state == READY and not is_netns(sandbox.netns):
        return "netns-gone"
    return sandbox.state


def _ls(args: argparse.Namespace, runtime: PodRuntime) -> int:
    pods = runtime.pods()
    if args.output == "json":
        _print_json([{**s.to_json(), "status": _display_state(s)} for s in pods])
        return 0
    headers = ("NAMESPACE", "NAME", "STATE", "IP", "NETWORK", "SANDBOX", "NETNS")
    rows = [
        (s.namespace, s.name, _display_state(s), ",".join(s.ips), s.network, s.id[:13], s.netns)
        for s in pods
    ]
    print(table(headers, rows))
    return 0


def _inspect(args: argparse.Namespace, runtime: PodRuntime) -> int:
    info = runtime.inspect(args.name, args.namespace)
    cached = (info.get("cache") or {}).get("result")
    if cached:
        result = Result.from_json(cached)
        info["ips"] = [str(ip.address) for ip in pod_ips(result, info["sandbox"]["ifname"])]
        info["interfaces"] = [
            {"name": i.name, "mac": i.mac, "sandbox": i.sandbox} for i in result.interfaces
        ]
    _print_json(info)
    return 0


def _check(args: argparse.Namespace, runtime: PodRuntime) -> int:
    runtime.check(args.name, args.namespace)
    print(f"pod {args.namespace}/{args.name}: ok")
    return 0


def _stop(args: argparse.Namespace, runtime: PodRuntime) -> int:
    sandbox = runtime.stop(args.name, args.namespace)
    print(f"stopped pod {sandbox.key}")
    return 0


def _rm(args: argparse.Namespace, runtime: PodRuntime) -> int:
    if runtime.remove(args.name, args.namespace):
        print(f"removed pod {args.namespace}/{args.name}")
    else:
        print(f"pod {args.namespace}/{args.name} not found, nothing to remove")
    return 0


# ---- cni ------------------------------------------------------------------------------


def _gc(args: argparse.Namespace, runtime: PodRuntime) -> int:
    reports = runtime.gc()
    errors = [e for r in reports for e in r.errors]
    if args.output == "json":
        _print_json(
            [
                {
                    "network": r.network,
                    "deleted": [a.to_json() for a in r.deleted],
                    "errors": [str(e) for e in r.errors],
                    "gcSent": r.gc_sent,
                    "skipped": r.skipped,
                }
                for r in reports
            ]
        )
    else:
        for report in reports:
            if report.skipped:
                print(f"network {report.network}: skipped ({report.skipped})")
                continue
            verb = "GC sent to its plugins" if report.gc_sent else "no GC verb before 1.1.0"
            print(
                f"network {report.network}: {len(report.deleted)} stale attachment(s) "
                f"deleted, {verb}"
            )
            for attachment in report.deleted:
                print(f"  deleted {attachment.container_id} {attachment.ifname}")
    if errors:
        print(f"podnet cni gc: {_one_line('; '.join(str(e) for e in errors))}", file=sys.stderr)
        return 1
    return 0


def _status(args: argparse.Namespace, runtime: PodRuntime) -> int:
    report = runtime.status()
    for message in report.warnings:
        print(f"podnet: warning: {_one_line(message)}", file=sys.stderr)
    network = report.network
    if args.output == "json":
        _print_json(
            {
                "ready": report.ready,
                "network": network.name if network else None,
                "confFile": network.source if network else None,
                "cniVersion": network.cni_version if network else None,
                "error": str(report.error) if report.error else None,
                "plugins": [
                    {"type": s.plugin_type, "error": str(s.error) if s.error else None}
                    for s in report.statuses
                ],
                "warnings": report.warnings,
            }
        )
    elif network is not None:
        print(f"network {network.name} from {network.source} (cniVersion {network.cni_version})")
        print(f"plugins {', '.join(network.plugin_types)}")
        if report.error is None and not report.statuses:
            print("STATUS  not in this cniVersion (needs 1.1.0)")
        for status in report.statuses:
            print(f"STATUS  {status.plugin_type}: {'ok' if status.error is None else status.error}")
        print("ready" if report.ready else "not ready")
    if not report.ready:
        problem = report.error or next(s.error for s in report.statuses if s.error)
        print(f"podnet cni status: {_one_line(str(problem))}", file=sys.stderr)
        return 1
    return 0

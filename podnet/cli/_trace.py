"""`podnet trace pod NAMESPACE/NAME`: the last ADD and DEL of a pod, hop by hop, as the
node's agent served them (read from its health server's /traces).

It runs in the caller's network namespace (the node's); `podnet lab trace POD` runs it
inside the pod's lab node.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
from typing import Any
from urllib.parse import urlencode

DEFAULT_PORT = 9090  # the lab's agents' health port; a node agent needs --healthz-port
TIMEOUT = 5.0


class TraceError(Exception):
    """The agent could not be asked, or has no trace of the pod."""


def register(subparsers: Any) -> None:
    trace = subparsers.add_parser(
        "trace",
        help="how the node's agent served a pod's CNI requests, hop by hop",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    kinds = trace.add_subparsers(dest="kind", metavar="KIND", required=True)
    pod = kinds.add_parser(
        "pod",
        help="the last ADD and DEL of a pod",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    pod.add_argument("pod", metavar="NAMESPACE/NAME", help="the pod (namespace/name)")
    add_trace_flags(pod)
    pod.set_defaults(handler=_run)


def add_trace_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verb", choices=("ADD", "DEL", "CHECK", "all"), default="all",
        help="which requests: the last of this verb, or the last of each",
    )  # fmt: skip
    parser.add_argument("--healthz-address", default="127.0.0.1", help="the agent's health address")
    parser.add_argument(
        "--healthz-port", type=int, default=DEFAULT_PORT, help="the agent's health port"
    )
    parser.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help="output format"
    )


def fetch_traces(address: str, port: int, pod: str) -> list[dict[str, Any]]:
    conn = http.client.HTTPConnection(address, port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/traces?" + urlencode({"pod": pod}))
        response = conn.getresponse()
        body = response.read()
    except OSError as exc:
        raise TraceError(
            f"cannot reach the agent's health server at {address}:{port} ({exc}): "
            "is the agent running with --healthz-port?"
        ) from None
    finally:
        conn.close()
    if response.status != 200:
        raise TraceError(f"the agent at {address}:{port} answered /traces with {response.status}")
    found: list[dict[str, Any]] = json.loads(body).get("traces", [])
    return found


def latest(traces: list[dict[str, Any]], verb: str) -> list[dict[str, Any]]:
    """The last request of each verb (or of `verb`) with the rest of its chain: the runtime
    sends one request per plugin of the conflist (flannel, then portmap), all with the
    same verb and container ID. In the order they were served."""
    last: dict[str, str] = {}
    for trace in traces:
        if verb in ("all", trace["verb"]):
            last[trace["verb"]] = trace["containerId"]
    chosen = [t for t in traces if last.get(t["verb"]) == t["containerId"]]
    return sorted(chosen, key=lambda t: str(t["startedAt"]))


def timeline(trace: dict[str, Any]) -> str:
    outcome = f"code {trace['code']}" + (f": {trace['error']}" if trace.get("error") else "")
    lines = [
        f"{trace['pod']} {trace['verb']}  container {trace['containerId'][:12]} "
        f"{trace['ifname']}  at {trace['startedAt']}  {trace['durationMs']:.3f} ms  {outcome}",
        f"  runtime -> {trace['plugin']}  (netns {trace['netns'] or '-'})",
    ]
    for span in trace["spans"]:
        pad = "  " * span["depth"]
        inputs = " ".join(f"{k}={v}" for k, v in span["inputs"].items())
        lines.append(
            f"  +{span['startMs']:8.3f} ms {pad}{span['plugin']} {span['verb']}"
            f"  {span['durationMs']:.3f} ms  {inputs}".rstrip()
        )
        if "error" in span:
            lines.append(f"  {'':12}{pad}  error {span['error']['code']}: {span['error']['msg']}")
        for key, values in (span.get("result") or {}).items():
            if values:
                lines.append(f"  {'':12}{pad}  {key}: {', '.join(values)}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    if args.pod.count("/") != 1:
        print(f"podnet trace: {args.pod!r} is not NAMESPACE/NAME", file=sys.stderr)
        return 2
    try:
        traces = latest(fetch_traces(args.healthz_address, args.healthz_port, args.pod), args.verb)
    except TraceError as exc:
        print(f"podnet trace: {exc}", file=sys.stderr)
        return 1
    if not traces:
        print(
            f"podnet trace: the agent has no trace of pod {args.pod} "
            "(it keeps the last 512 requests since it started)",
            file=sys.stderr,
        )
        return 1
    if args.output == "json":
        print(json.dumps({"traces": traces}, indent=2))
    else:
        print("\n\n".join(timeline(trace) for trace in traces))
    return 0

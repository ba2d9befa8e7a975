"""A trace of one CNI request: a span per plugin hop (flannel -> bridge -> host-local and
back), each with its start, duration, inputs, and result or error, and what the hop put in
the kernel as its result names it (interfaces with their sandbox, addresses, routes).

The host that serves a request sets `Host.trace`; `call` opens a span around every verb
it runs, the delegated ones included. Cheap on purpose: a few small dicts per hop, no
copy of the config, times from one monotonic clock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from podnet.cni._request import Request
    from podnet.cni._result import Result

# The config keys that say what a hop will touch; the rest stays out of the trace.
_CONFIG_KEYS = ("name", "type", "bridge", "isGateway", "ipMasq", "mtu", "hairpinMode")
_IPAM_KEYS = ("type", "subnet", "rangeStart", "rangeEnd", "dataDir")


class Span:
    __slots__ = ("plugin", "verb", "depth", "start", "duration", "inputs", "outcome")

    def __init__(self, plugin: str, verb: str, depth: int, start: float, inputs: dict[str, Any]):
        self.plugin = plugin
        self.verb = verb
        self.depth = depth
        self.start = start  # seconds since the trace began
        self.duration = 0.0
        self.inputs = inputs
        self.outcome: dict[str, Any] = {}

    def to_json(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "verb": self.verb,
            "depth": self.depth,
            "startMs": round(self.start * 1000, 3),
            "durationMs": round(self.duration * 1000, 3),
            "inputs": self.inputs,
            **self.outcome,
        }


class Trace:
    """One request as the runtime sent it, and the spans of its hops in start order."""

    def __init__(self, plugin: str, environ: Mapping[str, str]) -> None:
        self.plugin = plugin
        self.verb = environ.get("CNI_COMMAND", "")
        self.container_id = environ.get("CNI_CONTAINERID", "")
        self.ifname = environ.get("CNI_IFNAME", "")
        self.netns = environ.get("CNI_NETNS", "")
        args = dict(
            pair.split("=", 1) for pair in environ.get("CNI_ARGS", "").split(";") if "=" in pair
        )
        self.pod = f"{args.get('K8S_POD_NAMESPACE', '')}/{args.get('K8S_POD_NAME', '')}"
        self.started_at = time.time()
        self._t0 = time.perf_counter()
        self.duration = 0.0
        self.code = 0
        self.error = ""
        self.spans: list[Span] = []
        self._depth = 0

    @contextmanager
    def span(self, plugin: str, request: Request) -> Iterator[Span]:
        config = request.config
        ipam = config.get("ipam")
        ipam = ipam if isinstance(ipam, dict) else {}
        if ipam.get("type") == plugin:  # an IPAM hop gets the whole config; its part is ipam
            inputs = {key: ipam[key] for key in _IPAM_KEYS if key in ipam}
            subnets = [
                str(r.get("subnet"))
                for rs in ipam.get("ranges") or []
                if isinstance(rs, list)
                for r in rs
                if isinstance(r, dict)
            ]
            if subnets:
                inputs["ranges"] = ",".join(subnets)
        else:
            inputs = {key: config[key] for key in _CONFIG_KEYS if key in config}
            if "type" in ipam:
                inputs["ipam"] = ipam["type"]
        span = Span(plugin, request.command, self._depth, time.perf_counter() - self._t0, inputs)
        self.spans.append(span)
        self._depth += 1
        try:
            yield span
        except Exception as exc:
            span.outcome = {"error": {"code": getattr(exc, "code", 999), "msg": str(exc)}}
            raise
        finally:
            self._depth -= 1
            span.duration = time.perf_counter() - self._t0 - span.start

    def finish(self, code: int) -> Trace:
        """The request is answered with exit code `code` now."""
        self.duration = time.perf_counter() - self._t0
        self.code = code
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "verb": self.verb,
            "pod": self.pod,
            "containerId": self.container_id,
            "ifname": self.ifname,
            "netns": self.netns,
            "startedAt": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.started_at))
            + f".{int(self.started_at * 1000) % 1000:03d}Z",
            "durationMs": round(self.duration * 1000, 3),
            "code": self.code,
            **({"error": self.error} if self.error else {}),
            "spans": [span.to_json() for span in self.spans],
        }


def touched(result: Result | None) -> dict[str, Any]:
    """What a hop's result says it set up: interfaces (in the pod or on the node), the
    addresses and the routes."""
    if result is None:
        return {}
    return {
        "result": {
            "interfaces": [
                f"{i.name}@{'pod' if i.sandbox else 'node'}" + (f" {i.mac}" if i.mac else "")
                for i in result.interfaces
            ],
            "ips": [str(ip.address) for ip in result.ips],
            "routes": [
                str(route.dst) + (f" via {route.gw}" if route.gw else "") for route in result.routes
            ],
        }
    }

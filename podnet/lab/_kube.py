"""The official Kubernetes client's calls, answered as the JSON the API server sent.

The lab's daemons (sandbox drivers, scheduler) read Pods as dicts rather than the client's
model classes: building a V1Pod costs ~1.3 ms of CPU, for every watch event and every
answer, and each Pod start brings each daemon several of them. On two cores at eight pods
in flight that CPU was a large part of the API's overhead on a pod start. The client
still does the requests (its configuration, authentication and connection pool); only
the decoding into models is skipped, as `_preload_content=False` asks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

Object = dict[str, Any]


def call_json(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Object:
    """`call(*args, **kwargs)`, its answer as JSON. Errors are the client's ApiException,
    as without this."""
    response = call(*args, _preload_content=False, **kwargs)
    try:
        data = response.read()
    finally:
        response.release_conn()
    body = json.loads(data) if data else {}
    return body if isinstance(body, dict) else {}


def watch_json(list_call: Callable[..., Any], **kwargs: Any) -> Iterator[tuple[str, Object]]:
    """The events of a watch (`list_call` with watch=True) as (type, object). An ERROR
    event raises the client's ApiException with the Status's code (410: relist), as the
    client's own Watch does."""
    from kubernetes.client import ApiException
    from kubernetes.watch.watch import iter_resp_lines

    response = list_call(watch=True, _preload_content=False, **kwargs)
    try:
        for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
            if not line.strip():
                continue
            event = json.loads(line)
            kind, obj = str(event.get("type")), event.get("object") or {}
            if kind == "ERROR":
                raise ApiException(
                    status=int(obj.get("code") or 500),
                    reason=f"{obj.get('reason', '')}: {obj.get('message', '')}",
                )
            yield kind, obj
    finally:
        response.close()
        response.release_conn()


def meta(obj: Object) -> Object:
    return obj.get("metadata") or {}


def spec(obj: Object) -> Object:
    return obj.get("spec") or {}


def status(obj: Object) -> Object:
    return obj.get("status") or {}

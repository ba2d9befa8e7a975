"""The official Kubernetes client's calls, answered as the JSON the API server sent.

The lab's daemons (sandbox drivers, scheduler) each have a CoreV1Api (`core_v1`) and follow
Pods with one reflector loop (`follow_pods`). They read Pods as dicts rather than the client's
model classes: building a V1Pod costs ~1.3 ms of CPU, for every watch event and every
answer, and each Pod start brings each daemon several of them. On two cores at eight pods
in flight that CPU was a large part of the API's overhead on a pod start. The client
still does the requests (its configuration, authentication and connection pool); only
the decoding into models is skipped, as `_preload_content=False` asks.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

Object = dict[str, Any]
WATCH_SECONDS = 300


def core_v1(kubeconfig: str) -> Any:
    """A CoreV1Api speaking as the kubeconfig's user (the client is imported here: it
    takes a second to import, and every `podnet` command imports the lab)."""
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(kubeconfig))  # type: ignore[no-untyped-call]


def follow_pods(
    api: Any,
    stop: threading.Event,
    *,
    relist: Callable[[], str],
    handle: Callable[[str, Object], None],
    log: logging.Logger,
    who: str,
    retry_seconds: float,
    field_selector: str | None = None,
) -> None:
    """List (`relist` returns the list's resourceVersion), then watch Pods from there and
    hand every event but a BOOKMARK to `handle`, until `stop`. As client-go's reflector: a
    watch the server ends, or a 410 Expired, relists at once; any other failure (the API
    server restarting, a network hiccup) is logged and relists after `retry_seconds`."""
    from kubernetes.client import ApiException

    while not stop.is_set():
        try:
            version = relist()
            for kind, pod in watch_json(
                api.list_pod_for_all_namespaces,
                field_selector=field_selector,
                resource_version=version,
                timeout_seconds=WATCH_SECONDS,
            ):
                if stop.is_set():
                    break
                if kind != "BOOKMARK":
                    handle(kind, pod)
        except ApiException as exc:
            if exc.status != 410:
                log.warning("%s: API error %s %s; relisting", who, exc.status, exc.reason)
                stop.wait(retry_seconds)
        except Exception as exc:  # the API server restarting, a network hiccup
            log.warning("%s: %s; relisting", who, exc)
            stop.wait(retry_seconds)


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

"""OpenAPI v3 documents (/openapi/v3 and /openapi/v3/<group-version>), minimal but valid
for the kinds served: what kubectl reads before `create -f` and `apply -f`.

kubectl validates a manifest on the server when the group-version's document shows, among
the parameters of the kind's PATCH operation (matched by `x-kubernetes-group-version-kind`),
a `fieldValidation` query parameter; it then sends `?fieldValidation=Strict` and skips its
client-side schema check. Without these documents it refuses with "failed to download
openapi" unless given --validate=false. The PATCH operations list no request body, so
`kubectl apply` computes its strategic merge patch from the types compiled into kubectl
(all kinds served here are core ones it knows). The schemas name each kind's type fields
and keep the rest open (x-kubernetes-preserve-unknown-fields).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from podnet.apiserver._discovery import KUBERNETES_VERSION
from podnet.apiserver._resources import RESOURCES, Resource

_QUERY = ("dryRun", "fieldManager", "fieldValidation", "pretty")
_MEDIA = ("application/json", "application/yaml")


def _group_version(resource: Resource) -> str:
    return f"apis/{resource.group}/{resource.version}" if resource.group else "api/v1"


def _gvk(resource: Resource) -> dict[str, str]:
    return {"group": resource.group, "version": resource.version, "kind": resource.kind}


def _schema_name(resource: Resource) -> str:
    group = f"{resource.group.split('.')[0]}" if resource.group else "core"
    return f"io.k8s.api.{group}.{resource.version}.{resource.kind}"


def _response(resource: Resource) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{_schema_name(resource)}"}
    return {
        "200": {"description": "OK", "content": {m: {"schema": ref} for m in _MEDIA}},
        "401": {"description": "Unauthorized"},
    }


def _operation(resource: Resource, action: str, verb: str) -> dict[str, Any]:
    return {
        "operationId": f"{verb}{resource.kind}",
        # kubectl looks for fieldValidation among the PATCH operation's own parameters.
        "parameters": [{"name": n, "in": "query", "schema": {"type": "string"}} for n in _QUERY],
        "responses": _response(resource),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(resource),
    }


def _parameters(*path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in path
    ]


def _paths(resource: Resource) -> dict[str, Any]:
    base = f"/{_group_version(resource)}"
    scope = "/namespaces/{namespace}" if resource.namespaced else ""
    path_params = ("namespace",) if resource.namespaced else ()
    collection = f"{base}{scope}/{resource.name}"
    item = f"{collection}/{{name}}"
    paths = {
        collection: {
            "get": _operation(resource, "list", "list"),
            "post": _operation(resource, "post", "create"),
            "parameters": _parameters(*path_params),
        },
        item: {
            "get": _operation(resource, "get", "read"),
            "put": _operation(resource, "put", "replace"),
            "patch": _operation(resource, "patch", "patch"),
            "delete": _operation(resource, "delete", "delete"),
            "parameters": _parameters("name", *path_params),
        },
    }
    if resource.has_status:
        paths[f"{item}/status"] = {
            "get": _operation(resource, "get", "read"),
            "put": _operation(resource, "put", "replace"),
            "patch": _operation(resource, "patch", "patch"),
            "parameters": _parameters("name", *path_params),
        }
    return paths


def _schema(resource: Resource) -> dict[str, Any]:
    return {
        "description": f"{resource.kind} ({resource.api_version})",
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
        "x-kubernetes-preserve-unknown-fields": True,
        "x-kubernetes-group-version-kind": [_gvk(resource)],
    }


@cache
def group_version_document(group_version: str) -> bytes | None:
    """The OpenAPI v3 document of "api/v1" or "apis/<group>/<version>", as JSON."""
    served = [r for r in RESOURCES if _group_version(r) == group_version]
    if not served:
        return None
    paths: dict[str, Any] = {}
    for resource in served:
        paths.update(_paths(resource))
    document = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION[2]},
        "paths": paths,
        "components": {"schemas": {_schema_name(r): _schema(r) for r in served}},
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def root_document() -> dict[str, Any]:
    """/openapi/v3: each group-version's document and the hash clients cache it by."""
    paths = {}
    for group_version in sorted({_group_version(r) for r in RESOURCES}):
        document = group_version_document(group_version)
        assert document is not None
        digest = hashlib.sha512(document).hexdigest()[:128].upper()
        paths[group_version] = {"serverRelativeURL": f"/openapi/v3/{group_version}?hash={digest}"}
    return {"paths": paths}

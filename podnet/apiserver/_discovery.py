"""Discovery documents: what kubectl and the clients read to learn which resources exist
(/version, /api, /api/v1, /apis, /apis/<group>, /apis/<group>/<version>).

kubectl first asks for aggregated discovery (apidiscovery.k8s.io/v2); the plain
APIVersions / APIGroupList answer, with Content-Type application/json, makes it fall
back to these legacy documents, which are all it needs.
"""

from __future__ import annotations

import platform
from typing import Any

from podnet.apiserver._resources import RESOURCES, Resource

KUBERNETES_VERSION = ("1", "32", "v1.32.0")
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SUBRESOURCE_VERBS = ["get", "patch", "update"]


def version() -> dict[str, Any]:
    major, minor, git = KUBERNETES_VERSION
    return {
        "major": major,
        "minor": minor,
        "gitVersion": git,
        "gitCommit": "podnet",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": f"python{platform.python_version()}",
        "compiler": "podnet",
        "platform": f"linux/{platform.machine()}",
    }


def groups() -> list[str]:
    return sorted({r.group for r in RESOURCES if r.group})


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group(name: str) -> dict[str, Any]:
    versions = sorted({r.version for r in RESOURCES if r.group == name})
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list() -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(g) for g in groups()]}


def api_group(name: str) -> dict[str, Any] | None:
    if name not in groups():
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name)}


def _entries(resource: Resource) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": resource.name,
        "singularName": resource.singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": VERBS,
    }
    if resource.short_names:
        main["shortNames"] = list(resource.short_names)
    entries = [main]
    if resource.has_status:
        entries.append(
            {
                "name": f"{resource.name}/status",
                "singularName": "",
                "namespaced": resource.namespaced,
                "kind": resource.kind,
                "verbs": SUBRESOURCE_VERBS,
            }
        )
    if resource.kind == "Pod":
        entries.append(
            {
                "name": "pods/binding",
                "singularName": "",
                "namespaced": True,
                "kind": "Binding",
                "verbs": ["create"],
            }
        )
    return entries


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    served = [r for r in RESOURCES if r.group == group and r.version == version]
    if not served:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [entry for r in served for entry in _entries(r)],
    }

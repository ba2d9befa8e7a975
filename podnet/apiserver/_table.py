"""Table responses (meta.k8s.io/v1 Table), what `kubectl get` asks for with
`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`: the server picks the columns, so
`kubectl get nodes -o wide` shows the node's addresses as on any cluster."""

from __future__ import annotations

from typing import Any

from podnet.apiserver._resources import Object, Resource


def wants_table(accept: str) -> bool:
    for part in accept.split(","):
        params = {p.strip() for p in part.split(";")[1:]}
        if "as=Table" in params and "g=meta.k8s.io" in params:
            return True
    return False


def _row_object(obj: Object, include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def table(
    resource: Resource,
    objects: list[Object],
    *,
    resource_version: str,
    include_object: str = "Metadata",
    headers: bool = True,
    continue_token: str = "",
) -> dict[str, Any]:
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": [column.render(obj) for column in resource.columns]}
        embedded = _row_object(obj, include_object)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": [
            {
                "name": c.name,
                "type": c.type,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            }
            for c in resource.columns
        ]
        if headers
        else [],
        "rows": rows,
    }

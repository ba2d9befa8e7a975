"""The three PATCH formats the API server accepts for built-in kinds:

- JSON merge patch (RFC 7386, `application/merge-patch+json`): maps merge, null deletes,
  anything else (lists too) replaces.
- Strategic merge patch (`application/strategic-merge-patch+json`, what kubectl sends for
  built-in kinds): a merge patch in which the lists that Kubernetes declares with a
  patchMergeKey merge element by element on that key (conditions and addresses by
  `type`, containers by `name`, ...), `$patch: delete` removes an element or map and
  `$patch: replace` replaces it, and the `$setElementOrder/` and `$retainKeys` directives
  kubectl adds are honoured or ignored as order hints.
- JSON patch (RFC 6902, `application/json-patch+json`), by the kept `jsonpatch` library.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import jsonpatch
import jsonpointer

from podnet.apiserver._status import BadRequest, UnsupportedMediaType

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PATCH_TYPES = (MERGE_PATCH, STRATEGIC_MERGE_PATCH, JSON_PATCH)

# patchMergeKey of the lists in the kinds podnet serves (k8s.io/api/core/v1 types.go),
# by the field name; a list not named here is replaced whole, as the API server does.
MERGE_KEYS: Mapping[str, str] = {
    "conditions": "type",
    "addresses": "type",
    "taints": "key",
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "containerStatuses": "name",
    "initContainerStatuses": "name",
    "podIPs": "ip",
    "hostIPs": "ip",
    "ownerReferences": "uid",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "readinessGates": "conditionType",
}


def apply_patch(content_type: str, original: dict[str, Any], patch_body: bytes) -> dict[str, Any]:
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in PATCH_TYPES:
        raise UnsupportedMediaType(
            f"the body of the request was in an unknown format - accepted media types "
            f"include: {', '.join(PATCH_TYPES)}"
        )
    try:
        patch = json.loads(patch_body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"error decoding patch: {exc}") from exc
    if media == JSON_PATCH:
        return _json_patch(original, patch)
    if not isinstance(patch, dict):
        raise BadRequest("error decoding patch: the patch is not a JSON object")
    if media == MERGE_PATCH:
        result = merge_patch(original, patch)
    else:
        result = strategic_merge_patch(original, patch)
    return result if isinstance(result, dict) else {}


def _json_patch(original: dict[str, Any], patch: Any) -> dict[str, Any]:
    if not isinstance(patch, list):
        raise BadRequest("error decoding patch: a JSON patch is a list of operations")
    try:
        result = jsonpatch.JsonPatch(patch).apply(original)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise BadRequest(
            f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise BadRequest(f"invalid JSON patch: {exc}") from exc
    if not isinstance(result, dict):
        raise BadRequest("invalid JSON patch: the result is not an object")
    return result


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [item for item in result[field] if item not in value]
            continue
        if key.startswith("$"):
            continue  # directives; $setElementOrder only orders, which JSON readers ignore
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in MERGE_KEYS and MERGE_KEYS[key]:
            result[key] = _merge_list(result.get(key), value, MERGE_KEYS[key])
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(current: Any, patch: list[Any], merge_key: str) -> list[Any]:
    if not isinstance(current, list):
        current = []
    result = [copy.deepcopy(item) for item in current]
    for element in patch:
        if not isinstance(element, dict) or merge_key not in element:
            if isinstance(element, dict) and element.get("$patch") == "replace":
                return [copy.deepcopy(e) for e in patch if e is not element]
            raise BadRequest(f"map: {element} does not contain declared merge key: {merge_key}")
        index = next(
            (
                i
                for i, item in enumerate(result)
                if isinstance(item, dict) and item.get(merge_key) == element[merge_key]
            ),
            None,
        )
        if element.get("$patch") == "delete":
            if index is not None:
                del result[index]
            continue
        if index is None:
            result.append(strategic_merge_patch({}, element))
        else:
            result[index] = strategic_merge_patch(result[index], element)
    return result

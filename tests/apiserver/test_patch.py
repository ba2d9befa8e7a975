"""The PATCH formats, on plain dicts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from podnet.apiserver._patch import apply_patch, merge_patch, strategic_merge_patch
from podnet.apiserver._status import BadRequest, UnsupportedMediaType

NODE: dict[str, Any] = {
    "metadata": {"name": "n1", "labels": {"a": "1", "b": "2"}},
    "status": {
        "addresses": [
            {"type": "InternalIP", "address": "192.0.2.11"},
            {"type": "Hostname", "address": "n1"},
        ],
        "conditions": [{"type": "Ready", "status": "False"}],
    },
}


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"metadata": {"labels": {"a": None, "c": "3"}}}, {"b": "2", "c": "3"}),
        ({"metadata": {"labels": None}}, None),
        ({}, {"a": "1", "b": "2"}),
    ],
)
def test_merge_patch_maps(patch: dict[str, Any], expected: Any) -> None:
    assert merge_patch(NODE, patch)["metadata"].get("labels") == expected


def test_merge_patch_replaces_lists() -> None:
    patched = merge_patch(NODE, {"status": {"addresses": [{"type": "Hostname", "address": "x"}]}})
    assert patched["status"]["addresses"] == [{"type": "Hostname", "address": "x"}]
    assert NODE["status"]["addresses"][1]["address"] == "n1"  # the original is untouched


@pytest.mark.parametrize(
    ("patch", "addresses"),
    [
        ({"addresses": [{"type": "Hostname", "address": "x"}]},
         [("InternalIP", "192.0.2.11"), ("Hostname", "x")]),
        ({"addresses": [{"type": "ExternalIP", "address": "203.0.113.1"}]},
         [("InternalIP", "192.0.2.11"), ("Hostname", "n1"), ("ExternalIP", "203.0.113.1")]),
        ({"addresses": [{"type": "Hostname", "$patch": "delete"}]},
         [("InternalIP", "192.0.2.11")]),
        ({"addresses": [{"$patch": "replace"}, {"type": "Hostname", "address": "y"}]},
         [("Hostname", "y")]),
        ({"$setElementOrder/addresses": [{"type": "Hostname"}],
          "addresses": [{"type": "Hostname", "address": "z"}]},
         [("InternalIP", "192.0.2.11"), ("Hostname", "z")]),
    ],
)  # fmt: skip
def test_strategic_merge_merges_lists_by_key(patch: dict[str, Any], addresses: list[Any]) -> None:
    patched = strategic_merge_patch(NODE, {"status": patch})
    assert [(a["type"], a["address"]) for a in patched["status"]["addresses"]] == addresses


def test_strategic_merge_directives() -> None:
    replaced = strategic_merge_patch(
        NODE, {"metadata": {"labels": {"$patch": "replace", "z": "1"}}}
    )
    assert replaced["metadata"]["labels"] == {"z": "1"}
    deleted = strategic_merge_patch(NODE, {"status": {"$patch": "delete"}})
    assert "status" not in deleted
    finalizers = strategic_merge_patch(
        {"metadata": {"finalizers": ["a", "b"]}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}},
    )
    assert finalizers["metadata"]["finalizers"] == ["b"]
    with pytest.raises(BadRequest, match="does not contain declared merge key: type"):
        strategic_merge_patch(NODE, {"status": {"conditions": [{"status": "True"}]}})


def test_json_patch_and_its_errors() -> None:
    ops = [{"op": "add", "path": "/metadata/labels/c", "value": "3"}]
    patched = apply_patch("application/json-patch+json", NODE, json.dumps(ops).encode())
    assert patched["metadata"]["labels"]["c"] == "3"
    failing = [{"op": "test", "path": "/metadata/name", "value": "other"}]
    with pytest.raises(BadRequest):
        apply_patch("application/json-patch+json", NODE, json.dumps(failing).encode())
    with pytest.raises(BadRequest):
        apply_patch("application/json-patch+json", NODE, b'{"op": "add"}')
    with pytest.raises(BadRequest):
        apply_patch("application/merge-patch+json", NODE, b"not json")
    with pytest.raises(UnsupportedMediaType):
        apply_patch("application/apply-patch+yaml", NODE, b"{}")

"""The registry's byte-level list path gives what decoding would."""

from __future__ import annotations

import json

import pytest

from podnet.apiserver._registry import decode_value, with_version


@pytest.mark.parametrize(
    "value",
    [
        b'{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"},"spec":{}}',
        b'{"kind":"Namespace","metadata":{}}',
        b'{"metadata":{"name":"x","annotations":{"a":"{\\"metadata\\":{}}"}}}',
    ],
)
def test_splice_equals_decode(value: bytes) -> None:
    spliced = with_version(value, 42)
    assert spliced is not None
    assert json.loads(spliced) == decode_value(value, 42)


@pytest.mark.parametrize(
    "value",
    [
        b'{"spec":{"template":{"metadata":{"name":"inner"}}},"metadata":{"name":"x"}}',
        b'{"metadata":{"name":"x","resourceVersion":"7"}}',
        b'{"kind":"{","metadata":{"name":"x"}}',
        b'{"kind":"Node"}',
    ],
)
def test_splice_declines_when_unsure(value: bytes) -> None:
    assert with_version(value, 42) is None

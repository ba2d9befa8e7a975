"""Label and field selector parsing and matching."""

from __future__ import annotations

import pytest

from podnet.apiserver._resources import PODS
from podnet.apiserver._selectors import parse_field_selector, parse_label_selector
from podnet.apiserver._status import BadRequest

LABELS = {"app": "web", "tier": "front", "example.com/zone": "a"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("app=web,tier=back", False),
        ("app in (web, db)", True),
        ("app notin (web)", False),
        ("missing notin (x)", True),
        ("missing!=x", True),
        ("tier", True),
        ("!tier", False),
        ("!missing", True),
        ("example.com/zone=a", True),
        ("app in (web,db),tier", True),
    ],
)
def test_label_selector(selector: str, matches: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is matches


@pytest.mark.parametrize("selector", ["app in", "=web", "app in (a),!", "Bad Key=1"])
def test_label_selector_errors(selector: str) -> None:
    with pytest.raises(BadRequest):
        parse_label_selector(selector)


def test_field_selector() -> None:
    pod = {"metadata": {"name": "p", "namespace": "default"}, "spec": {"nodeName": "n1"},
           "status": {"phase": "Running"}}  # fmt: skip
    fields = PODS.selectable()
    selector = parse_field_selector("spec.nodeName=n1,status.phase!=Failed", fields)
    assert selector.matches(pod, fields) and selector.value_of("spec.nodeName") == "n1"
    assert not parse_field_selector("metadata.namespace=kube-system", fields).matches(pod, fields)
    with pytest.raises(BadRequest, match="field label not supported: spec.image"):
        parse_field_selector("spec.image=x", fields)
    with pytest.raises(BadRequest, match="invalid selector"):
        parse_field_selector("spec.nodeName", fields)

from __future__ import annotations

import pytest
import yaml

from podnet.cli._yaml import dump_yaml


def test_kubectl_layout() -> None:
    data = {
        "apiVersion": "v1",
        "metadata": {"name": "n1", "annotations": {"a.b/c": "x y"}, "labels": {}},
        "spec": {"podCIDRs": ["10.244.0.0/24", "fd00::/64"]},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.10"}]},
        "items": [],
        "nested": [[1, 2], {"k": [True, None]}],
    }
    assert dump_yaml(data) == (
        "apiVersion: v1\n"
        "metadata:\n"
        "  name: n1\n"
        "  annotations:\n"
        "    a.b/c: x y\n"
        "  labels: {}\n"
        "spec:\n"
        "  podCIDRs:\n"
        "  - 10.244.0.0/24\n"
        "  - fd00::/64\n"
        "status:\n"
        "  addresses:\n"
        "  - type: InternalIP\n"
        "    address: 192.0.2.10\n"
        "items: []\n"
        "nested:\n"
        "- - 1\n"
        "  - 2\n"
        "- k:\n"
        "  - true\n"
        "  - null\n"
    )
    assert yaml.safe_load(dump_yaml(data)) == data


def test_long_strings_stay_on_one_line() -> None:
    value = "x" * 150 + " y" * 40
    assert dump_yaml({"v": value}) == f"v: {value}\n"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", "plain"),
        ("10.244.0.0/24", "10.244.0.0/24"),
        ("192.0.2.10", "192.0.2.10"),
        ("123", '"123"'),
        ("1.5", '"1.5"'),
        ("1e5", '"1e5"'),
        ("0x1f", '"0x1f"'),
        ("true", '"true"'),
        ("No", '"No"'),
        ("y", '"y"'),
        ("null", '"null"'),
        ("", '""'),
        ("2024-01-01T00:00:00Z", '"2024-01-01T00:00:00Z"'),
        ("a: b", '"a: b"'),
        ("-x", "-x"),
        ("line\nbreak", '"line\\nbreak"'),
        (5, "5"),
        (False, "false"),
        (None, "null"),
    ],
)
def test_scalars_read_back_as_the_same_value(value: object, text: str) -> None:
    dumped = dump_yaml({"v": value})
    assert dumped == f"v: {text}\n"
    assert yaml.safe_load(dumped) == {"v": value}

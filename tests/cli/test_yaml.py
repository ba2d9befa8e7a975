from __future__ import annotations

import pytest

from podnet.cli._yaml import dump_yaml, scalar


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
        '    a.b/c: "x y"\n'
        "  labels: {}\n"
        "spec:\n"
        "  podCIDRs:\n"
        "  - 10.244.0.0/24\n"
        '  - "fd00::/64"\n'
        "status:\n"
        "  addresses:\n"
        "  - type: InternalIP\n"
        "    address: 192.0.2.10\n"
        "items: []\n"
        "nested:\n"
        "-\n"
        "  - 1\n"
        "  - 2\n"
        "- k:\n"
        "  - true\n"
        "  - null\n"
    )


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
        ("null", '"null"'),
        ("", '""'),
        ("2024-01-01T00:00:00Z", '"2024-01-01T00:00:00Z"'),
        ("a: b", '"a: b"'),
        ("-x", '"-x"'),
        ("line\nbreak", '"line\\nbreak"'),
        (5, "5"),
        (False, "false"),
        (None, "null"),
    ],
)
def test_scalars_read_back_as_the_same_value(value: object, text: str) -> None:
    assert scalar(value) == text

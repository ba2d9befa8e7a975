"""`-o yaml`: PyYAML's safe_dump in kubectl's layout: two-space indents, list items not
indented under their key, keys in the given order, long strings never folded, and a string
that would read back as something else (a number, a boolean, null, a timestamp) quoted with
double quotes, as kubectl's go-yaml does (PyYAML alone would use single quotes).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_NO_FOLDING = 1 << 30  # PyYAML folds plain scalars at its `width`; kubectl does not


class _KubectlDumper(yaml.SafeDumper):
    def choose_scalar_style(self) -> str:
        style: str = super().choose_scalar_style()
        return '"' if style == "'" else style


# Plain scalars go-yaml (and any YAML 1.2 reader) takes for something else, which PyYAML's
# YAML 1.1 rules would leave plain: 1e5 is a float there, y and n are booleans.
_KubectlDumper.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)
_KubectlDumper.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"[yYnN]$"), list("yYnN"))


def dump_yaml(data: Any) -> str:
    text: str = yaml.dump(
        data,
        Dumper=_KubectlDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=_NO_FOLDING,
    )
    return text

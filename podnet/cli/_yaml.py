"""A small YAML emitter for JSON-shaped data (what `-o yaml` prints), in kubectl's layout:
two-space indents, list items not indented under their key, keys in the given order.

A string is written plain only when it cannot be read back as anything else (a number, a
boolean, null, a timestamp); otherwise it is double-quoted, JSON style, which YAML reads
as the same string.
"""

from __future__ import annotations

import json
import re
from typing import Any

_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
_NUMBER_LIKE = re.compile(
    r"[-+]?(\.?[0-9][0-9_]*)(\.[0-9_]*)?([eE][-+]?[0-9]+)?|0[xXoObB][0-9a-fA-F_]+"
)
_TIMESTAMP_LIKE = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}.*")
_RESERVED = {"true", "false", "yes", "no", "y", "n", "on", "off", "null", "~"}


def dump_yaml(data: Any) -> str:
    lines: list[str] = []
    _emit(data, 0, lines)
    return "\n".join(lines) + "\n"


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    text = str(value)
    if (
        _PLAIN.fullmatch(text)
        and not _NUMBER_LIKE.fullmatch(text)
        and not _TIMESTAMP_LIKE.fullmatch(text)
        and text.lower() not in _RESERVED
    ):
        return text
    return json.dumps(text, ensure_ascii=False)


def _emit(data: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(data, dict):
        if not data:
            lines.append(pad + "{}")
        for key, value in data.items():
            _emit_entry(pad + scalar(key) + ":", value, indent, lines, nested_list_indent=indent)
    elif isinstance(data, list):
        if not data:
            lines.append(pad + "[]")
        for item in data:
            _emit_item(item, indent, lines)
    else:
        lines.append(pad + scalar(data))


def _emit_entry(
    head: str, value: Any, indent: int, lines: list[str], *, nested_list_indent: int
) -> None:
    if isinstance(value, dict) and value:
        lines.append(head)
        _emit(value, indent + 2, lines)
    elif isinstance(value, list) and value:
        lines.append(head)
        _emit(value, nested_list_indent, lines)  # kubectl style: "- " under the key
    elif isinstance(value, dict | list):
        lines.append(f"{head} {'{}' if isinstance(value, dict) else '[]'}")
    else:
        lines.append(f"{head} {scalar(value)}")


def _emit_item(item: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(item, dict) and item:
        first = True
        for key, value in item.items():
            prefix = pad + ("- " if first else "  ")
            _emit_entry(
                prefix + scalar(key) + ":", value, indent + 2, lines, nested_list_indent=indent + 2
            )
            first = False
    elif isinstance(item, list) and item:
        lines.append(pad + "-")
        _emit(item, indent + 2, lines)
    elif isinstance(item, dict | list):
        lines.append(pad + ("- {}" if isinstance(item, dict) else "- []"))
    else:
        lines.append(pad + "- " + scalar(item))

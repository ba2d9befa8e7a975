"""JSON values as the CNI's Go types read them."""

from __future__ import annotations

from typing import Any, TypeGuard


def is_int(value: Any) -> TypeGuard[int]:
    """A JSON integer: true and false are not 1 and 0 (Python's bool is an int)."""
    return isinstance(value, int) and not isinstance(value, bool)

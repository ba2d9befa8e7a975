"""JSON values as the CNI's Go types read them."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any, TypeGuard


def is_int(value: Any) -> TypeGuard[int]:
    """A JSON integer: true and false are not 1 and 0 (Python's bool is an int)."""
    return isinstance(value, int) and not isinstance(value, bool)

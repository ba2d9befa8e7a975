"""Plain text tables for the terminal: columns padded to their widest cell and `gap` spaces
apart (kubectl's `get` uses 3), no trailing white space."""

from __future__ import annotations

from collections.abc import Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, gap: int = 2) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    separator = " " * gap
    lines = [
        separator.join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    return "\n".join(lines)

"""json.loads and json.dumps for the pod path, on json's own C accelerator (`_json`)
without json's Python modules.

Why: `import json` imports `re` (json's decoder, scanner and encoder each compile
patterns at import), and `re` imports `enum`: ~15 million instructions, about a seventh
of what a pod's ADD costs when the launcher's fallback runs the plugin in-process (one
interpreter per pod, every module imported again). The parsing and the encoding are the
same C code json itself uses (`_json.make_scanner`, `_json.make_encoder`, the string
encoders); only json's wrappers around them are left out.

The answer is json's own, byte for byte: a value these functions do not handle
themselves (bad input of any kind, a BOM or a UTF-16/32 encoding, an object json cannot
encode, a circular one, sort_keys with an indent) goes to the json module itself, which
is imported then and raises its own error with its own message. Pinned by a test that
compares both on generated documents (tests/test_json.py).
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any

_WHITESPACE = " \t\n\r"  # json.decoder.WHITESPACE
_INFINITY = float("inf")
# json.scanner's py_make_scanner: UTF-16 and UTF-32 text starts with a NUL in its first
# four bytes, and a BOM is json's to refuse or decode; anything else is UTF-8.
_NOT_PLAIN_UTF8 = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


class _Decoding:
    """What the C scanner reads off json.JSONDecoder(): its defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {
        "-Infinity": -_INFINITY,
        "Infinity": _INFINITY,
        "NaN": float("nan"),
    }.__getitem__


# typeshed types the context as a scanner; the C code reads only the attributes above
_scan = _json.make_scanner(_Decoding)  # type: ignore[arg-type]


class _NotHandled(Exception):
    """A value the fast path leaves to the json module."""


def loads(text: str | bytes | bytearray) -> Any:
    """json.loads(text): the same value, or the same exception."""
    try:
        return _loads(text)
    except Exception:  # json decides, and words the error its own way
        import json

        return json.loads(text)


def _loads(text: str | bytes | bytearray) -> Any:
    if isinstance(text, (bytes, bytearray)):
        if b"\0" in text[:4] or text.startswith(_NOT_PLAIN_UTF8):
            raise _NotHandled
        text = text.decode("utf-8", "surrogatepass")
    if not isinstance(text, str) or text.startswith("\ufeff"):
        raise _NotHandled
    value, end = _scan(text, len(text) - len(text.lstrip(_WHITESPACE)))
    if end != len(text.rstrip(_WHITESPACE)):  # extra data after the value
        raise _NotHandled
    return value


def _not_serializable(value: object) -> object:
    raise _NotHandled


def dumps(
    obj: Any,
    *,
    indent: int | None = None,
    sort_keys: bool = False,
    separators: tuple[str, str] | None = None,
    ensure_ascii: bool = True,
) -> str:
    """json.dumps(obj, ...) with these keywords: the same text, or the same exception."""
    try:
        return _dumps(obj, indent, sort_keys, separators, ensure_ascii)
    except Exception:  # json decides, and words the error its own way
        import json

        return json.dumps(
            obj,
            indent=indent,
            sort_keys=sort_keys,
            separators=separators,
            ensure_ascii=ensure_ascii,
        )


def _dumps(
    obj: Any,
    indent: int | None,
    sort_keys: bool,
    separators: tuple[str, str] | None,
    ensure_ascii: bool,
) -> str:
    if indent is None:
        item_separator, key_separator = separators or (", ", ": ")
        encode = _json.make_encoder(
            {},  # json's markers: a circular value is refused, not recursed into
            _not_serializable,
            _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring,
            None,
            key_separator,
            item_separator,
            sort_keys,
            False,  # skipkeys
            True,  # allow_nan
        )
        return "".join(encode(obj, 0))
    if sort_keys or separators is not None or not ensure_ascii:
        raise _NotHandled
    chunks: list[str] = []
    _indented(obj, " " * indent, "\n", chunks)
    return "".join(chunks)


def _indented(value: object, step: str, newline: str, out: list[str]) -> None:
    """json's pure-Python encoder with an indent (the C one has none in 3.11), for the
    values JSON has: dicts with str keys, lists, tuples, str, int, float, bool, None."""
    if isinstance(value, str):
        out.append(_json.encode_basestring_ascii(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_float_text(value))
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        inner = newline + step
        out.append("[")
        for index, item in enumerate(value):
            out.append("," + inner if index else inner)
            _indented(item, step, inner, out)
        out.append(newline + "]")
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = newline + step
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise _NotHandled  # json converts or refuses such keys
            out.append("," + inner if index else inner)
            out.append(_json.encode_basestring_ascii(key) + ": ")
            _indented(item, step, inner, out)
        out.append(newline + "}")
    else:
        raise _NotHandled


def _float_text(value: float) -> str:
    if value != value:
        return "NaN"
    if value == _INFINITY:
        return "Infinity"
    if value == -_INFINITY:
        return "-Infinity"
    return float.__repr__(value)


__all__ = ["dumps", "loads"]

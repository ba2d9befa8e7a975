"""podnet._json answers as the json module does (the same value, text or exception) for
any input, and imports neither json nor re unless it hands an input over to json."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podnet import _json

# Any character, lone surrogates included (they reach plugins from non-UTF-8 bytes).
TEXT = st.text(st.characters(blacklist_categories=()), max_size=20)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | TEXT
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(TEXT, inner, max_size=4)
    ),
    max_leaves=20,
)
# What podnet's pod path passes to dumps, and what json accepts beside.
DUMPS_OPTIONS: list[dict[str, Any]] = [
    {},
    {"indent": 1},
    {"indent": 2},
    {"indent": 0},
    {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": False},
    {"sort_keys": True, "indent": 1},
    {"ensure_ascii": False, "indent": 1},
]


def outcome(func: Callable[[], object]) -> tuple[str, str]:
    """A call's value (by repr, so NaN equals NaN) or its exception, type and words."""
    try:
        return "value", repr(func())
    except Exception as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=300, deadline=None)
@given(VALUES, st.sampled_from(DUMPS_OPTIONS))
def test_dumps_writes_what_json_writes(value: object, options: dict[str, Any]) -> None:
    expected = outcome(lambda: json.dumps(value, **options))
    assert outcome(lambda: _json.dumps(value, **options)) == expected
    indent = options.get("indent")
    sort_keys = options.get("sort_keys", False)
    ascii_only = options.get("ensure_ascii", True)
    if indent is None or (ascii_only and not sort_keys):  # written without json's help
        fast = _json._dumps(value, indent, sort_keys, options.get("separators"), ascii_only)
        assert ("value", repr(fast)) == expected


@settings(max_examples=300, deadline=None)
@given(VALUES, st.sampled_from(["", " ", "\n\t ", "\r\n"]), st.booleans())
def test_loads_reads_what_json_reads(value: object, space: str, as_bytes: bool) -> None:
    text = space + json.dumps(value, indent=1 if as_bytes else None) + space
    document: str | bytes = text.encode("utf-8", "surrogatepass") if as_bytes else text
    assert outcome(lambda: _json.loads(document)) == outcome(lambda: json.loads(document))
    assert repr(_json._loads(document)) == repr(json.loads(document))  # without json's help


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=30) | TEXT | st.sampled_from(["", " ", "1 2", "[1,]", "\ufeff{}"]))
def test_bad_input_gets_json_own_error(document: str | bytes) -> None:
    assert outcome(lambda: _json.loads(document)) == outcome(lambda: json.loads(document))


@pytest.mark.parametrize(
    "document",
    [
        '{"a": [1]}'.encode("utf-16"),
        '{"a": [1]}'.encode("utf-16-le"),
        '{"a": [1]}'.encode("utf-32"),
        '{"a": [1]}'.encode("utf-8-sig"),
        bytearray(b' {"a": [1]} '),
    ],
)
def test_encodings_and_boms_as_json_reads_them(document: bytes | bytearray) -> None:
    assert _json.loads(document) == json.loads(document) == {"a": [1]}


def circular() -> list[object]:
    value: list[object] = []
    value.append(value)
    return value


@pytest.mark.parametrize("options", DUMPS_OPTIONS)
@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ({1: "int key", False: 2, 2.5: None}, False),  # json writes such keys as text
        ({(1,): "tuple key"}, True),
        ({"a": {1, 2}}, True),
        (object(), True),
        (circular(), True),
    ],
)
def test_what_json_converts_or_refuses_is_alike(
    value: object, refused: bool, options: dict[str, Any]
) -> None:
    ours = outcome(lambda: _json.dumps(value, **options))
    assert ours == outcome(lambda: json.dumps(value, **options))
    assert (ours[0] != "value") == refused


def test_imports_neither_json_nor_re_on_good_input() -> None:
    code = (
        "import sys; from podnet import _json; "
        "_json.dumps(_json.loads(b'{\"a\": [1, 2.5, null, true]}'), indent=1); "
        "_json.dumps({'a': 'b'}, sort_keys=True, separators=(',', ':'), ensure_ascii=False); "
        "print(' '.join(sorted(set(sys.modules) & {'json', 're', 'enum'}))); "
        "_json.loads(b'[1,')"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = {sys.path!r}; {code}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.stdout.strip() == ""
    assert "json.decoder.JSONDecodeError: Expecting value" in proc.stderr  # json's own, later

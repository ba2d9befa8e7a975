"""podnet._wire's request parser: fed in any pieces, refuses what is not the protocol."""

from __future__ import annotations

import pytest

from podnet._wire import MAGIC, RequestParser, RequestRefused, WireError, encode_request

ENV = {"CNI_COMMAND": "ADD", "CNI_IFNAME": "eth0", "ODD": "\udcff"}


@pytest.mark.parametrize("piece", [1, 3, 7, 1 << 20])
def test_a_request_fed_in_pieces(piece: int) -> None:
    data = encode_request("bridge", ENV, b'{"a": 1}')
    parser = RequestParser()
    for start in range(0, len(data), piece):
        assert not parser.complete
        parser.feed(data[start : start + piece])
    assert parser.needed == 0
    assert parser.request() == ("bridge", ENV, b'{"a": 1}')


def test_empty_fields() -> None:
    parser = RequestParser()
    parser.feed(encode_request("", {}, b""))
    assert parser.complete
    assert parser.request() == ("", {}, b"")


def test_needed_never_exceeds_what_the_request_declared() -> None:
    parser = RequestParser()
    assert parser.needed == 4
    parser.feed(MAGIC)
    assert parser.needed == 4
    parser.feed((5).to_bytes(4, "big"))
    assert parser.needed == 5


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (MAGIC + (3 * 1024 * 1024).to_bytes(4, "big"), 4),
        (MAGIC + b"\0\0\0\0" + (3 * 1024 * 1024).to_bytes(4, "big"), 4),
        (MAGIC + b"\0\0\0\0" * 2 + (3 * 1024 * 1024).to_bytes(4, "big"), 6),
    ],
)
def test_a_field_over_the_limit_is_refused_with_a_code(data: bytes, code: int) -> None:
    parser = RequestParser()
    with pytest.raises(RequestRefused) as caught:
        parser.feed(data)
    assert caught.value.code == code
    assert parser.speaks_protocol


def test_a_plugin_type_that_is_not_utf8_is_refused() -> None:
    parser = RequestParser()
    parser.feed(MAGIC + b"\0\0\0\2\xff\xfe" + b"\0\0\0\0" * 2)
    with pytest.raises(RequestRefused) as caught:
        parser.request()
    assert caught.value.code == 4


def test_bad_magic_is_not_the_protocol() -> None:
    parser = RequestParser()
    with pytest.raises(WireError):
        parser.feed(b"GET ")
    assert not parser.speaks_protocol


def test_bytes_after_the_request() -> None:
    parser = RequestParser()
    with pytest.raises(WireError, match="after the end"):
        parser.feed(encode_request("x", {}, b"") + b"!")


def test_an_incomplete_request_has_no_fields() -> None:
    parser = RequestParser()
    parser.feed(MAGIC)
    with pytest.raises(WireError, match="not complete"):
        parser.request()

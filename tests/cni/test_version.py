from __future__ import annotations

import pytest

from podnet.cni import ALL_VERSIONS, DecodingFailure, IncompatibleVersion, negotiate, parse_version


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.1.0", (0, 1, 0)),
        ("1.1.0", (1, 1, 0)),
        ("", (0, 1, 0)),
        ("10.20.30", (10, 20, 30)),
    ],
)
def test_parse_version(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_version(text) == expected


@pytest.mark.parametrize(
    "text", ["1", "1.0", "a.b.c", "1.0.0-rc1", "1..0", "1.0.\u00b2", "\u0661.0.0", " 1.0.0"]
)
def test_parse_version_rejects(text: str) -> None:
    with pytest.raises(DecodingFailure):
        parse_version(text)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"cniVersion": "0.3.1"}, "0.3.1"),
        ({"cniVersion": "0.3.1", "cniVersions": ["1.0.0", "1.1.0"]}, "1.1.0"),
        ({"cniVersions": ["0.4.0", "9.9.9"]}, "0.4.0"),
        ({"cniVersion": "1.0.0", "cniVersions": ["2.0.0"]}, "1.0.0"),
        ({}, "0.1.0"),
    ],
)
def test_negotiate_picks_highest_supported(config: dict[str, object], expected: str) -> None:
    assert negotiate(config) == expected


def test_negotiate_nothing_supported() -> None:
    with pytest.raises(IncompatibleVersion):
        negotiate({"cniVersion": "9.0.0"})


def test_all_versions_sorted() -> None:
    assert list(ALL_VERSIONS) == sorted(ALL_VERSIONS, key=parse_version)

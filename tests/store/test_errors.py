"""Library exceptions are translated at the boundary: every one we might see is mapped."""

from __future__ import annotations

import inspect
import sqlite3

import httpx
import pytest

from podnet.store import (
    HTTPX_ERRORS,
    SQLITE_ERRORS,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    map_exceptions,
)


def exception_classes(module: object) -> list[type[BaseException]]:
    return [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__.split(".")[0] == module.__name__  # type: ignore[attr-defined]
    ]


@pytest.mark.parametrize(
    ("module", "mapping"),
    [(sqlite3, SQLITE_ERRORS), (httpx, HTTPX_ERRORS)],
    ids=["sqlite3", "httpx"],
)
def test_every_library_exception_is_mapped(module: object, mapping: dict) -> None:  # type: ignore[type-arg]
    classes = exception_classes(module)
    assert classes, "found no exception classes to check"
    for klass in classes:
        assert any(issubclass(klass, known) for known in mapping), f"{klass.__name__} is not mapped"


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (httpx.ConnectTimeout("slow"), StoreTimeout),
        (httpx.ReadTimeout("slow"), StoreTimeout),
        (httpx.ConnectError("refused"), StoreUnavailable),
        (httpx.RemoteProtocolError("peer closed"), StoreUnavailable),
        (httpx.InvalidURL("bad"), StoreError),
        (sqlite3.OperationalError("database is locked"), StoreUnavailable),
    ],
)
def test_the_most_specific_mapping_wins_and_the_cause_is_kept(
    raised: Exception, expected: type[StoreError]
) -> None:
    with (
        pytest.raises(StoreError) as caught,
        map_exceptions({**HTTPX_ERRORS, **SQLITE_ERRORS}, "ctx"),
    ):
        raise raised
    assert type(caught.value) is expected
    assert caught.value.__cause__ is raised
    assert str(caught.value).startswith("ctx: ")


def test_unmapped_exceptions_pass_through() -> None:
    with pytest.raises(KeyError), map_exceptions(HTTPX_ERRORS):
        raise KeyError("not ours")

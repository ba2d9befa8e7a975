"""Fixtures shared by the whole suite."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import pytest

from podnet.cni import DEFAULT_LOCK_DIR


@pytest.fixture(autouse=True)
def clean_environ(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """No test sees CNI_* variables it did not set, and plugin logs go to a temp file."""
    for name in list(os.environ):
        if name.startswith("CNI_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PODNET_LOG_FILE", str(tmp_path_factory.getbasetemp() / "cni.log"))
    # attachment locks (podnet.cni._attachment_lock) of this run, not the host's /run
    monkeypatch.setenv("PODNET_LOCK_DIR", str(tmp_path_factory.getbasetemp() / "attachments"))
    yield


def _machine_locks() -> set[str]:
    try:
        return set(os.listdir(DEFAULT_LOCK_DIR))
    except FileNotFoundError:
        return set()


@pytest.fixture(autouse=True, scope="module")
def no_locks_in_the_machine_run() -> Iterator[None]:
    """A plugin run with an environment of the test's making (containerd's, a minimal
    one) that forgets PODNET_LOCK_DIR takes its attachment locks in the machine's /run,
    and leaves them there when the test never sends DEL: the module that did it fails."""
    before = _machine_locks()
    yield
    added = sorted(_machine_locks() - before)
    assert not added, f"attachment locks left in {DEFAULT_LOCK_DIR}: {added[:5]}"


@pytest.fixture(autouse=True, scope="module")
def collect_leaks_per_module() -> Iterator[None]:
    """A socket or file left open is only reported when the garbage collector finds it,
    which may be in any later test; collecting after each module names the module that
    leaked it (as an error in its last test's teardown)."""
    yield
    gc.collect()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root to create network namespaces")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)

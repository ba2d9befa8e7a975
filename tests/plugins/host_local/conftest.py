"""A CNI bin dir with our host-local executable, written by install-cni."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from podnet.plugins._install import install_executables
from tests.plugins.host_local._helpers import REFERENCE


@pytest.fixture(scope="session")
def bin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("cni-bin")
    install_executables(str(directory), ["host-local"])
    return directory


@pytest.fixture(scope="session")
def ours(bin_dir: Path) -> Path:
    return bin_dir / "host-local"


@pytest.fixture(scope="session")
def reference() -> str:
    if not os.access(REFERENCE, os.X_OK):
        pytest.skip("the reference host-local (containernetworking-plugins) is not installed")
    return REFERENCE

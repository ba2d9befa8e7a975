"""Fixtures shared by the lab's tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from podnet.lab import Lab, lab_namespaces


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A lab of the test's own (its name, state and namespaces under tmp_path), not yet
    up; taken down afterwards, and nothing of it may be left."""
    name = "t" + secrets.token_hex(3)
    netns_dir = tmp_path / "netns"
    netns_dir.mkdir()
    lab = Lab(name, root=str(tmp_path / "labs"), netns_dir=str(netns_dir))
    try:
        yield lab
    finally:
        lab.down()
        assert lab_namespaces(name, netns_dir=str(netns_dir)) == []

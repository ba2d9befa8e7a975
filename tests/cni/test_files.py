"""State files: written whole, and their names made durable by fsync'ing the directory
after they appear or go (issue 13)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from podnet.cni import atomic_write, fsync_dir, remove_durably

FsyncLog = list[tuple[str, bool]]  # (path, is a directory) per fsync, in order


@pytest.fixture
def fsynced(monkeypatch: pytest.MonkeyPatch) -> FsyncLog:
    """Every fsync of this process while the test runs."""
    seen: FsyncLog = []
    real: Callable[[int], None] = os.fsync

    def record(fd: int) -> None:
        seen.append((os.readlink(f"/proc/self/fd/{fd}"), stat.S_ISDIR(os.fstat(fd).st_mode)))
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    return seen


def test_atomic_write_fsyncs_the_file_then_its_directory(tmp_path: Path, fsynced: FsyncLog) -> None:
    atomic_write(str(tmp_path / "state"), b"data")
    assert (tmp_path / "state").read_bytes() == b"data"
    assert fsynced[-1] == (str(tmp_path), True)
    assert [is_dir for _, is_dir in fsynced] == [False, True]


def test_a_write_that_is_not_durable_fsyncs_nothing(tmp_path: Path, fsynced: FsyncLog) -> None:
    atomic_write(str(tmp_path / "state"), b"data", durable=False)
    assert fsynced == []


def test_remove_durably(tmp_path: Path, fsynced: FsyncLog) -> None:
    (tmp_path / "gone").write_bytes(b"x")
    assert remove_durably(str(tmp_path / "gone"))
    assert not (tmp_path / "gone").exists()
    assert fsynced == [(str(tmp_path), True)]
    assert not remove_durably(str(tmp_path / "gone"))
    assert len(fsynced) == 1


def test_fsync_dir_of_a_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        fsync_dir(str(tmp_path / "missing"))

"""State files: written whole, and their names made durable by fsync'ing the directory
after they appear or go (issue 13)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from podnet.cni import atomic_write, fsync_dir, read_file, remove_durably

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


def test_atomic_write_makes_missing_directories_with_their_mode(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "state"
    atomic_write(str(target), b"first", mode=0o600, dir_mode=0o700)
    atomic_write(str(target), b"second", mode=0o600, dir_mode=0o700)  # the directory is there
    assert target.read_bytes() == b"second"
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["state"]


def test_read_file_reads_it_whole(tmp_path: Path) -> None:
    big = os.urandom(200_000)  # more than one read's worth
    (tmp_path / "big").write_bytes(big)
    (tmp_path / "empty").write_bytes(b"")
    assert read_file(str(tmp_path / "big")) == big
    assert read_file(str(tmp_path / "empty")) == b""
    with pytest.raises(FileNotFoundError):
        read_file(str(tmp_path / "missing"))
    with pytest.raises(IsADirectoryError):
        read_file(str(tmp_path))


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


def test_threads_share_directory_fsyncs_and_each_waits_for_one_that_covers_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit: every thread returns only after an fsync that started after its file
    appeared has finished, and eight threads share one or two fsyncs."""
    import threading
    import time

    rounds: list[tuple[float, float]] = []  # (start, end) of every fsync
    real: Callable[[int], None] = os.fsync

    def slow(fd: int) -> None:
        start = time.monotonic()
        real(fd)
        time.sleep(0.05)  # long enough that the others queue behind it
        rounds.append((start, time.monotonic()))

    monkeypatch.setattr(os, "fsync", slow)
    ready = threading.Barrier(8)
    covered: list[bool] = []

    def one(i: int) -> None:
        (tmp_path / f"f{i}").write_bytes(b"")
        created = time.monotonic()
        ready.wait(timeout=10)
        fsync_dir(str(tmp_path))
        returned = time.monotonic()
        covered.append(any(created <= s and e <= returned for s, e in rounds))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert covered == [True] * 8
    assert 1 <= len(rounds) <= 2


def test_a_failed_directory_fsync_covers_nobody(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real: Callable[[int], None] = os.fsync

    def failing_once(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")
        real(fd)

    monkeypatch.setattr(os, "fsync", failing_once)
    with pytest.raises(OSError):
        fsync_dir(str(tmp_path))
    fsync_dir(str(tmp_path))  # runs its own fsync: the failed one made nothing durable
    assert len(calls) == 2
    fsync_dir(str(tmp_path))  # nothing changed since, but it cannot know: one more
    assert len(calls) == 3

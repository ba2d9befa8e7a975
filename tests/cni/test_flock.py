"""Lock files with a deadline (podnet.cni._flock)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from podnet.cni._flock import LockTimeout, flock_within, holder


def test_threads_of_one_process_queue_with_the_same_deadline(tmp_path: Path) -> None:
    path = str(tmp_path / "lock")
    open(path, "w").close()
    first_in = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with open(path, "rb") as handle, flock_within(handle.fileno(), path, 5):
            first_in.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert first_in.wait(5)
    try:
        with open(path, "rb") as handle:
            with pytest.raises(LockTimeout, match="another request of this process"):
                with flock_within(handle.fileno(), path, 0.2):
                    pytest.fail("two holders at once")
    finally:
        release.set()
        thread.join(10)
    with open(path, "rb") as handle, flock_within(handle.fileno(), path, 1):
        pass


def test_no_holder_is_named_when_the_kernel_knows_none(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    path.touch()
    with open(path, "rb") as handle:
        assert holder(handle.fileno()) == "by another process"

"""Work a plugin leaves for after the answer: deferred only where someone collects it."""

from __future__ import annotations

from pathlib import Path

import pytest

from podnet.cni import after_answer, can_defer, collect_after_answer, run_after_answer


def test_without_a_collector_work_runs_at_once() -> None:
    done: list[str] = []
    assert not can_defer()
    after_answer(lambda: done.append("now"))
    assert done == ["now"]


def test_a_collector_keeps_work_until_asked_and_is_undone_on_exit() -> None:
    done: list[str] = []
    with collect_after_answer() as later:
        assert can_defer()
        after_answer(lambda: done.append("a"))
        after_answer(lambda: done.append("b"))
        assert done == []
    assert not can_defer()
    run_after_answer(later)
    assert done == ["a", "b"]


def test_nested_collectors_restore_the_outer_one() -> None:
    with collect_after_answer() as outer:
        with collect_after_answer() as inner:
            after_answer(lambda: None)
        after_answer(lambda: None)
    assert (len(outer), len(inner)) == (1, 1)


def test_a_failing_piece_is_logged_and_the_rest_still_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log = tmp_path / "cni.log"
    monkeypatch.setenv("PODNET_LOG_FILE", str(log))
    done: list[str] = []

    def broken() -> None:
        raise RuntimeError("kernel said no")

    run_after_answer([broken, lambda: done.append("after")])
    assert done == ["after"]
    assert "work after the answer failed: RuntimeError: kernel said no" in log.read_text()

"""`podnet demo` runs the real executables end to end and cleans up after itself."""

from __future__ import annotations

import glob
import tempfile

import pytest

from podnet.cli.main import main


def test_demo_allocates_and_gc_frees_the_forgotten(capsys: pytest.CaptureFixture[str]) -> None:
    before = set(glob.glob(f"{tempfile.gettempdir()}/podnet-demo-*"))
    assert main(["demo-ipam", "--pods", "4"]) == 0
    out = capsys.readouterr().out
    assert "10.244.1.2/24" in out and "10.244.1.5/24" in out
    assert "\\r\\n" in out  # the reservation file's content is shown
    assert out.count("freed   ") == 2  # one forgotten pod: its IPv4 and IPv6 address
    assert "0 reservations left" in out
    assert set(glob.glob(f"{tempfile.gettempdir()}/podnet-demo-*")) == before


def test_demo_refuses_a_bad_pod_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo-ipam", "--pods", "99"]) == 2
    assert "--pods must be between" in capsys.readouterr().err

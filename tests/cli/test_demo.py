"""`podnet demo-ipam` runs the real executables end to end and cleans up after itself."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

from podnet.cli.main import main


def test_demo_allocates_and_gc_frees_the_forgotten(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo's work dir goes under this test's own temp dir: other runs' demos (in
    # parallel, or crashed) cannot make this test pass or fail.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main(["demo-ipam", "--pods", "4"]) == 0
    out = capsys.readouterr().out
    assert "10.244.1.2/24" in out and "10.244.1.5/24" in out
    assert "\\r\\n" in out  # the reservation file's content is shown
    assert out.count("freed   ") == 2  # one forgotten pod: its IPv4 and IPv6 address
    assert "0 reservations left" in out
    # The work dir the demo named (its bin dir's parent) was made where asked, and is gone.
    bin_dir = re.search(r"bin dir\s+(\S+)", out)
    assert bin_dir is not None
    workdir = Path(os.path.dirname(bin_dir.group(1)))
    assert workdir.parent == tmp_path and workdir.name.startswith("podnet-demo-")
    assert not workdir.exists()
    assert list(tmp_path.iterdir()) == []


def test_demo_refuses_a_bad_pod_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo-ipam", "--pods", "99"]) == 2
    assert "--pods must be between" in capsys.readouterr().err

"""`podnet agent ...` refuses an unsafe CNI socket place with one line, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_serve_cni_refuses_a_socket_dir_others_can_write(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    result = subprocess.run(
        [sys.executable, "-m", "podnet.cli.main", "agent", "serve-cni"]
        + ["--socket", str(shared / "cni.sock")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "writable by group or others (mode 0777)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (shared / "cni.sock").exists()

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


def agent_run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "podnet.cli.main", "agent", "run", "--iface", "eth0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def one_line(result: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    assert result.returncode == code, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_kube_subnet_mgr_names_what_is_missing_in_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin"}  # no NODE_NAME, no KUBERNETES_SERVICE_HOST
    one_line(
        agent_run("--kube-subnet-mgr", env=env),
        2,
        "no node name: pass --node-name or set NODE_NAME",
    )
    missing = str(tmp_path / "net-conf.json")
    one_line(
        agent_run(
            "--kube-subnet-mgr", "--net-config-path", missing, env={**env, "NODE_NAME": "n1"}
        ),
        1,
        f"cannot read the network config {missing}: No such file or directory",
    )
    (tmp_path / "net-conf.json").write_text(
        '{"Network": "10.244.0.0/16", "Backend": {"Type": "x"}}'
    )
    one_line(
        agent_run("--kube-subnet-mgr", "--node-name", "n1", "--net-config-path", missing, env=env),
        1,
        f"{missing}: Backend.Type 'x' is not supported",
    )
    (tmp_path / "net-conf.json").write_text('{"Network": "10.244.0.0/16"}')
    (tmp_path / "cni-conf.json").write_text('{"name": "cbr0", "type": "flannel"}')
    one_line(
        agent_run(
            "--node-name", "n1", "--net-config-path", missing,
            "--cni-conf-file", str(tmp_path / "cni-conf.json"), env=env,
        ),
        1,
        f'{tmp_path / "cni-conf.json"}: not a conflist (no "plugins" list)',
    )  # fmt: skip
    one_line(
        agent_run("--kube-subnet-mgr", "--node-name", "n1", "--net-config-path", missing, env=env),
        1,
        "no Kubernetes credentials: pass --kubeconfig, or run in a pod",
    )

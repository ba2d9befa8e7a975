"""`podnet apiserver`: a real process serving until SIGTERM, and one-line errors."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from podnet.apiserver import write_token_file


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def podnet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "podnet.cli.main", *args], capture_output=True, text=True, timeout=60
    )


def test_run_serves_until_sigterm(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.csv"
    write_token_file(str(tokens), [("secret", "admin", "1", ("system:masters",))])
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "podnet.cli.main", "apiserver", "run",
         "--store", f"sqlite://{tmp_path}/cluster.db", "--listen", f"127.0.0.1:{port}",
         "--cert-dir", str(tmp_path / "pki"), "--token-file", str(tokens)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        verify = None
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()
            try:
                verify = ssl.create_default_context(cafile=str(tmp_path / "pki" / "ca.crt"))
                headers = {"Authorization": "Bearer secret"}
                response = httpx.get(f"https://127.0.0.1:{port}/api/v1/namespaces", verify=verify,
                                     headers=headers, timeout=5)  # fmt: skip
                break
            except (httpx.HTTPError, OSError):
                assert time.monotonic() < deadline, "the API server never answered"
                time.sleep(0.1)
        assert response.status_code == 200
        assert len(response.json()["items"]) == 4
        kubeconfig = podnet(
            "apiserver", "kubeconfig", "--token-file", str(tokens), "--user", "admin",
            "--server", f"https://127.0.0.1:{port}", "--cert-dir", str(tmp_path / "pki"),
            "-o", str(tmp_path / "admin.kubeconfig"),
        )  # fmt: skip
        assert kubeconfig.returncode == 0, kubeconfig.stderr
        config = json.loads((tmp_path / "admin.kubeconfig").read_text())
        assert config["users"][0]["user"]["token"] == "secret"
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--token-file", "/nonexistent/tokens"], "podnet: token file /nonexistent/tokens: "),
        (["--token-file", "TOKENS", "--listen", "nowhere"], "podnet: --listen 'nowhere': "),
    ],
)
def test_run_problems_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    tokens = tmp_path / "tokens.csv"
    write_token_file(str(tokens), [("secret", "admin", "1", ())])
    args = [str(tokens) if a == "TOKENS" else a for a in args]
    done = podnet("apiserver", "run", "--cert-dir", str(tmp_path / "pki"), *args)
    assert done.returncode == 1
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr

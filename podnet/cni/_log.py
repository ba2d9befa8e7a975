"""Plugin logging to a file: containerd discards a plugin's stderr, and stdout carries
only the result. The file is opened per line, so a plugin that logs nothing opens nothing."""

from __future__ import annotations

import os
import time

DEFAULT_LOG_FILE = "/var/log/podnet/cni.log"


def log_path() -> str:
    return os.environ.get("PODNET_LOG_FILE", DEFAULT_LOG_FILE)


def log(message: str) -> None:
    path = log_path()
    if not path:
        return
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    line = f"{stamp} pid={os.getpid()} {message}\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except FileNotFoundError:
        try:
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError:
            return
    except OSError:
        return
    try:
        os.write(fd, line.encode(errors="replace"))
    finally:
        os.close(fd)

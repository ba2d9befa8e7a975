"""The delegate configs flannel saves for DEL: <dataDir>/<containerID>, dir 0700, file
0600, written atomically (the reference writes in place, so a crash could leave half a
config that DEL then cannot read)."""

from __future__ import annotations

import json
import os
from typing import Any

from podnet.cni import IOFailure, atomic_write, log


class ScratchDir:
    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir

    def path(self, container_id: str) -> str:
        return os.path.join(self.data_dir, container_id)

    def save(self, container_id: str, data: bytes) -> None:
        try:
            atomic_write(self.path(container_id), data, mode=0o600, dir_mode=0o700)
        except OSError as exc:
            raise IOFailure(f"saving {self.path(container_id)}: {exc.strerror}") from None

    def load(self, container_id: str) -> dict[str, Any] | None:
        """The saved delegate config; None when there is none or it cannot be read as one."""
        path = self.path(container_id)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IOFailure(f"reading {path}: {exc.strerror}") from None
        try:
            config = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            config = None
        if not isinstance(config, dict) or not isinstance(config.get("type"), str):
            log(f"flannel: ignoring {path}: not a delegate config")
            return None
        return config

    def remove(self, container_id: str) -> None:
        try:
            os.unlink(self.path(container_id))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise IOFailure(f"removing {self.path(container_id)}: {exc.strerror}") from None

    def container_ids(self) -> list[str]:
        """The containers with a saved config (temp files of atomic writes excluded)."""
        try:
            names = os.listdir(self.data_dir)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise IOFailure(f"reading {self.data_dir}: {exc.strerror}") from None
        return sorted(n for n in names if n[:1].isalnum())

"""The delegate configs flannel saves for DEL: <dataDir>/<containerID>, dir 0700, file
0600, written atomically (the reference writes in place, so a crash could leave half a
config that DEL then cannot read).

The temp file of that write is named `.tmp-<containerID>~<random>` ('~' cannot occur in
a container ID): a plugin killed between writing and renaming leaves it behind, and the
container's DEL, which the runtime sends after a failed ADD, finds it by that name and
removes it; so does GC for a container the runtime no longer lists (whose DEL may never
come), as it removes that container's saved config. Nothing else may remove temp files:
another container's ADD may be writing.

Not fsync'd (upstream's newest plugin is, because its DEL fails forever on the empty file
a power loss can leave): `load` reads an empty or broken file as no saved config, and DEL
then rebuilds the delegate from subnet.env. A flush per pod would buy nothing more.
"""

from __future__ import annotations

import os

from podnet import _json as json
from podnet.cni import IOFailure, atomic_write, log, read_file

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any

_TEMP_PREFIX = ".tmp-"
_TEMP_SEPARATOR = "~"


class ScratchDir:
    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir

    def path(self, container_id: str) -> str:
        return os.path.join(self.data_dir, container_id)

    def save(self, container_id: str, data: bytes) -> None:
        try:
            atomic_write(
                self.path(container_id),
                data,
                mode=0o600,
                dir_mode=0o700,
                temp_prefix=self._temp_prefix(container_id),
                durable=False,
            )
        except OSError as exc:
            raise IOFailure(f"saving {self.path(container_id)}: {exc.strerror}") from None

    def load(self, container_id: str) -> dict[str, Any] | None:
        """The saved delegate config; None when there is none or it cannot be read as one."""
        path = self.path(container_id)
        try:
            data = read_file(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IOFailure(f"reading {path}: {exc.strerror}") from None
        try:
            config = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            config = None
        if not isinstance(config, dict) or not isinstance(config.get("type"), str):
            log(f"flannel: ignoring {path}: not a delegate config")
            return None
        return config

    def remove(self, container_id: str) -> None:
        self._unlink(self.path(container_id))

    def remove_debris(self, container_id: str) -> None:
        """Temp files of `container_id`'s interrupted saves (see the module docstring)."""
        prefix = self._temp_prefix(container_id)
        try:
            names = os.listdir(self.data_dir)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise IOFailure(f"reading {self.data_dir}: {exc.strerror}") from None
        for name in names:
            if name.startswith(prefix):
                self._unlink(os.path.join(self.data_dir, name))

    def debris_owners(self) -> dict[str, bytes]:
        """The containers with temp files of interrupted saves, each with what one of
        them holds (whole, part of a config, or nothing)."""
        try:
            names = os.listdir(self.data_dir)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise IOFailure(f"reading {self.data_dir}: {exc.strerror}") from None
        owners: dict[str, bytes] = {}
        for name in names:
            owner, separator, _ = name[len(_TEMP_PREFIX) :].rpartition(_TEMP_SEPARATOR)
            if name.startswith(_TEMP_PREFIX) and separator and owner:
                try:
                    with open(os.path.join(self.data_dir, name), "rb") as handle:
                        owners[owner] = handle.read(1 << 16)
                except OSError:
                    owners.setdefault(owner, b"")
        return owners

    @staticmethod
    def _temp_prefix(container_id: str) -> str:
        return f"{_TEMP_PREFIX}{container_id}{_TEMP_SEPARATOR}"

    @staticmethod
    def _unlink(path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise IOFailure(f"removing {path}: {exc.strerror}") from None

    def container_ids(self) -> list[str]:
        """The containers with a saved config (temp files of atomic writes excluded)."""
        try:
            names = os.listdir(self.data_dir)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise IOFailure(f"reading {self.data_dir}: {exc.strerror}") from None
        return sorted(n for n in names if n[:1].isalnum())

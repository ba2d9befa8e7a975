"""nftables through the `nft` command in JSON mode, in the caller's network namespace.

A batch given to `nft -j -f -` is one kernel transaction: either every command in it
applies or none does. `nft` reports kernel errors as text ("Could not process rule: No
such file or directory"); the errno is recovered from that text so callers can tell a
missing object from a real failure.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from typing import Any

# Plugins may run with an empty PATH (`env -i`, some runtimes): look in sbin too.
_NFT_FALLBACKS = ("/usr/sbin/nft", "/sbin/nft")
_TIMEOUT = 30.0

_ERRNO_BY_TEXT = {
    os.strerror(code): code
    for code in (errno.ENOENT, errno.EEXIST, errno.EBUSY, errno.EPERM, errno.EINVAL, errno.ENOSPC)
}


class NftError(OSError):
    """nft refused a batch or failed to run; `errno` when its message names one."""


def _nft_path() -> str:
    found = shutil.which("nft")
    if found:
        return found
    return next((p for p in _NFT_FALLBACKS if os.access(p, os.X_OK)), "nft")


def _run(args: list[str], stdin: bytes, what: str) -> bytes:
    try:
        proc = subprocess.run(
            [_nft_path(), *args],
            input=stdin,
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise NftError(errno.ENOENT, f"{what}: the nft command is not installed") from None
    except subprocess.TimeoutExpired:
        raise NftError(errno.ETIMEDOUT, f"{what}: nft timed out") from None
    if proc.returncode != 0:
        text = proc.stderr.decode(errors="replace").strip()
        code = next((c for t, c in _ERRNO_BY_TEXT.items() if t in text), errno.EIO)
        first = text.splitlines()[0] if text else f"exit status {proc.returncode}"
        raise NftError(code, f"{what}: {first}")
    return proc.stdout


def nft_apply(commands: list[dict[str, Any]], *, what: str = "nft") -> None:
    """Apply JSON commands ({"add": {...}}, {"delete": {...}}, ...) as one transaction."""
    if not commands:
        return
    document = json.dumps({"nftables": commands}).encode()
    _run(["-j", "-f", "-"], document, what)


def nft_list(what_to_list: dict[str, Any], *, what: str = "nft list") -> list[dict[str, Any]]:
    """A JSON list command ({"table": {"family": ..., "name": ...}}, {"tables": None}) as a
    list of objects, metainfo left out. A missing object raises NftError(ENOENT)."""
    document = json.dumps({"nftables": [{"list": what_to_list}]}).encode()
    out = _run(["-j", "-f", "-"], document, what)
    try:
        items = json.loads(out).get("nftables", []) if out.strip() else []
    except ValueError as exc:
        raise NftError(errno.EIO, f"{what}: unreadable nft output: {exc}") from None
    return [item for item in items if "metainfo" not in item]

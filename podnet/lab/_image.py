"""The pod sandbox ("pause") image, built locally: nothing can be pulled here.

A pod sandbox only has to hold the pod's namespaces open, so its image is one layer with
a static busybox and an entrypoint that sleeps. It is written as a docker-archive
(`manifest.json` + image config + layer tar), the format `ctr images import` reads
without a registry. Every byte is deterministic (fixed mtimes, sorted JSON), so the
image digest is stable and importing it again is a no-op.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import tarfile
from typing import Any, Literal

SANDBOX_IMAGE = "localhost/podnet/pause:1.0"
DEFAULT_BUSYBOX = "/bin/busybox"
# 2^31 - 1 seconds: the longest sleep busybox accepts, about 68 years.
SLEEP_FOREVER = ["/bin/sleep", "2147483647"]

# Go's GOARCH names, which the image config uses.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le"}


class ImageError(Exception):
    """The sandbox image cannot be built (for example: busybox is not static)."""


def is_static_elf(path: str) -> bool:
    """Whether `path` is an ELF executable without a program interpreter (PT_INTERP):
    the rootfs has no libc, so a dynamically linked busybox could not start there."""
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:  # only 64-bit ELF is handled
        return False
    order: Literal["little", "big"] = "little" if data[5] == 1 else "big"
    phoff = int.from_bytes(data[0x20:0x28], order)
    phentsize = int.from_bytes(data[0x36:0x38], order)
    phnum = int.from_bytes(data[0x38:0x3A], order)
    pt_interp = 3
    for index in range(phnum):
        start = phoff + index * phentsize
        if int.from_bytes(data[start : start + 4], order) == pt_interp:
            return False
    return True


def _layer_tar(busybox: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("bin", "dev", "etc", "proc", "sys", "tmp"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
        with open(busybox, "rb") as handle:
            payload = handle.read()
        info = tarfile.TarInfo("bin/busybox")
        info.size = len(payload)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(payload))
        # busybox picks the applet from argv[0].
        link = tarfile.TarInfo("bin/sleep")
        link.type = tarfile.SYMTYPE
        link.linkname = "busybox"
        link.mode = 0o777
        tar.addfile(link)
    return buffer.getvalue()


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _add_member(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(payload))


def write_sandbox_image(
    path: str, *, ref: str = SANDBOX_IMAGE, busybox: str = DEFAULT_BUSYBOX
) -> str:
    """Write the sandbox image as a docker-archive at `path`; returns its config digest
    (the image ID containerd shows)."""
    if not os.path.exists(busybox):
        raise ImageError(f"{busybox} does not exist (install busybox-static)")
    if not is_static_elf(busybox):
        raise ImageError(f"{busybox} is not a static executable (install busybox-static)")
    layer = _layer_tar(busybox)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = _json_bytes(
        {
            "architecture": _GOARCH.get(platform.machine(), platform.machine()),
            "os": "linux",
            "config": {"Entrypoint": SLEEP_FOREVER, "Env": ["PATH=/bin"], "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "podnet.lab: static busybox that sleeps"}],
        }
    )
    config_digest = hashlib.sha256(config).hexdigest()
    layer_name = f"{diff_id.removeprefix('sha256:')}/layer.tar"
    manifest = _json_bytes(
        [{"Config": f"{config_digest}.json", "RepoTags": [ref], "Layers": [layer_name]}]
    )
    temp = f"{path}.tmp-{os.getpid()}"
    with tarfile.open(temp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add_member(tar, f"{config_digest}.json", config)
        _add_member(tar, layer_name, layer)
        _add_member(tar, "manifest.json", manifest)
    os.replace(temp, path)
    return "sha256:" + config_digest

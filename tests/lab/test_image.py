"""The locally built sandbox image: a docker-archive that containerd can import."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tarfile

import pytest

from podnet.lab import SANDBOX_IMAGE, ImageError, is_static_elf, write_sandbox_image

BUSYBOX = "/bin/busybox"
needs_static_busybox = pytest.mark.skipif(
    not (os.path.exists(BUSYBOX) and is_static_elf(BUSYBOX)), reason="needs busybox-static"
)


def test_dynamic_executables_are_not_static() -> None:
    # The interpreter running this test is dynamically linked (it loads libc).
    assert not is_static_elf(os.path.realpath(sys.executable))


def test_non_elf_is_not_static(tmp_path) -> None:
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\nexit 0\n")
    assert not is_static_elf(str(script))


def test_a_dynamic_busybox_is_refused(tmp_path) -> None:
    with pytest.raises(ImageError, match="not a static executable"):
        write_sandbox_image(str(tmp_path / "i.tar"), busybox=os.path.realpath(sys.executable))
    with pytest.raises(ImageError, match="does not exist"):
        write_sandbox_image(str(tmp_path / "i.tar"), busybox=str(tmp_path / "none"))


@needs_static_busybox
def test_archive_layout_digests_and_entrypoint(tmp_path) -> None:
    path = str(tmp_path / "pause.tar")
    image_id = write_sandbox_image(path)
    with tarfile.open(path) as archive:
        members = {member.name: archive.extractfile(member) for member in archive.getmembers()}
        blobs = {name: handle.read() for name, handle in members.items() if handle}
    (manifest,) = json.loads(blobs["manifest.json"])
    assert manifest["RepoTags"] == [SANDBOX_IMAGE]
    config_bytes = blobs[manifest["Config"]]
    assert image_id == "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    config = json.loads(config_bytes)
    assert config["config"]["Entrypoint"] == ["/bin/sleep", "2147483647"]
    assert config["os"] == "linux"
    (layer_name,) = manifest["Layers"]
    layer = blobs[layer_name]
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]

    with tarfile.open(fileobj=io.BytesIO(layer)) as layer_tar:
        entries = {member.name: member for member in layer_tar.getmembers()}
        busybox = layer_tar.extractfile("bin/busybox")
        assert busybox is not None
        payload = busybox.read()
    assert entries["bin/sleep"].issym() and entries["bin/sleep"].linkname == "busybox"
    assert entries["bin/busybox"].mode == 0o755
    with open(BUSYBOX, "rb") as handle:
        assert payload == handle.read()
    assert {"proc", "sys", "dev"} <= {name for name, m in entries.items() if m.isdir()}


@needs_static_busybox
def test_the_same_image_every_time(tmp_path) -> None:
    # A stable digest makes importing it again a no-op for containerd.
    first = write_sandbox_image(str(tmp_path / "a.tar"))
    second = write_sandbox_image(str(tmp_path / "b.tar"))
    assert first == second
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []

"""host-local's dataDir on a full filesystem (a small tmpfs mounted in a temp dir, and
unmounted after): every ADD is refused with a CNI error that says why, nothing is
half-written, DEL still works, and once space returns pods get addresses again."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos._figures import Limit, record
from tests.plugins.host_local._helpers import Outcome, netconf, run

pytestmark = [pytest.mark.chaos, pytest.mark.root]

TMPFS_SIZE = "512k"
PODS_BEFORE = 5
ADDS_WHILE_FULL = 40
NETWORK = "net1"


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    subprocess.run(
        [
            "mount",
            "-t",
            "tmpfs",
            "-o",
            f"size={TMPFS_SIZE},mode=0755",
            "pn-chaos",
            str(mount_point),
        ],
        check=True,
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(directory: Path) -> Path:
    """A file that takes every free byte of the filesystem under `directory`."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        while True:
            try:
                os.write(fd, b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    finally:
        os.close(fd)
    return filler


def clear_error(outcome: Outcome) -> bool:
    """A CNI error on stdout (JSON, a code, a message naming the lack of space)."""
    if outcome.code == 0:
        return False
    try:
        answer = json.loads(outcome.stdout)
    except ValueError:
        return False
    message = f"{answer.get('msg', '')} {answer.get('details', '')}".lower()
    return isinstance(answer.get("code"), int) and "no space" in message


def half_written(network_dir: Path, owners: set[str]) -> list[str]:
    """Files whose content is not what a complete write leaves: a reservation names one of
    our attachments, a round-robin hint is an address, and no temp file remains."""
    bad = []
    for path in network_dir.iterdir():
        name = path.name
        content = path.read_bytes()
        if name == "lock":
            continue
        if name.startswith(".tmp-"):
            bad.append(name)
        elif name.startswith("last_reserved_ip."):
            if not content.strip().startswith(b"10.1.2."):
                bad.append(f"{name}: {content!r}")
        elif content.decode(errors="replace") not in owners:
            bad.append(f"{name}: {content!r}")
    return bad


def test_full_data_dir(ours: Path, small_tmpfs: Path) -> None:
    started = time.monotonic()
    conf = netconf(small_tmpfs)
    network_dir = small_tmpfs / NETWORK
    owners = {f"{cid}\r\neth0" for cid in [f"before{i}" for i in range(PODS_BEFORE)]}
    owners |= {f"full{i}\r\neth0" for i in range(ADDS_WHILE_FULL)}
    for i in range(PODS_BEFORE):
        assert run(ours, "ADD", conf, cid=f"before{i}").code == 0

    filler = fill(small_tmpfs)
    outcomes = [run(ours, "ADD", conf, cid=f"full{i}") for i in range(ADDS_WHILE_FULL)]
    unclear = [o for o in outcomes if not clear_error(o)]
    # DEL frees without needing space
    deleted = run(ours, "DEL", conf, cid="before0")
    broken = half_written(network_dir, owners)
    held_while_full = sorted(
        p.name for p in network_dir.iterdir() if p.read_bytes().startswith(b"full")
    )

    filler.unlink()
    after = [run(ours, "ADD", conf, cid=f"full{i}") for i in range(ADDS_WHILE_FULL)]
    addresses = [a for o in after if o.code == 0 for a in o.addresses()]
    for i in range(1, PODS_BEFORE):
        run(ours, "DEL", conf, cid=f"before{i}")
    for i in range(ADDS_WHILE_FULL):
        run(ours, "DEL", conf, cid=f"full{i}")
    left = sorted(
        p.name
        for p in network_dir.iterdir()
        if p.name != "lock" and not p.name.startswith("last_reserved_ip.")
    )

    figures = {
        "adds_while_full": len(outcomes),
        "unclear_errors": len(unclear),
        "adds_answered_ok_while_full": sum(o.code == 0 for o in outcomes),
        "reservations_of_failed_adds": len(held_while_full),
        "half_written_files": len(broken),
        "del_failed_while_full": int(deleted.code != 0),
        "adds_failed_after_space_returned": sum(o.code != 0 for o in after),
        "duplicate_addresses": len(addresses) - len(set(addresses)),
        "files_left_after_del": len(left),
    }
    limits = {
        "unclear_errors": Limit(most=0),
        "adds_answered_ok_while_full": Limit(most=0),
        "reservations_of_failed_adds": Limit(most=0),
        "half_written_files": Limit(most=0),
        "del_failed_while_full": Limit(most=0),
        "adds_failed_after_space_returned": Limit(most=0),
        "duplicate_addresses": Limit(most=0),
        "files_left_after_del": Limit(most=0),
    }
    notes = {
        "tmpfs": TMPFS_SIZE,
        "first_error": outcomes[0].stdout.decode(errors="replace")[:300],
        "unclear": [o.stdout.decode(errors="replace")[:200] for o in unclear[:3]],
        "half_written": broken[:5],
        "left": left[:5],
    }
    regressions = record("full-disk", figures, limits, started=started, notes=notes)
    assert not regressions, regressions

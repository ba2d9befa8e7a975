"""The rtnetlink handle without a kernel: dump retries, error mapping."""

from __future__ import annotations

import errno
from typing import Any

import pytest
from pyroute2.netlink.exceptions import NetlinkDumpInterrupted
from pyroute2.netlink.exceptions import NetlinkError as PyrouteNetlinkError

from podnet.netlink import LinkNotFound, NetlinkError, NetnsError, Rtnl, open_rtnl
from podnet.netlink._rtnl import NLM_F_DUMP_INTR, netlink_errors


def message(flags: int) -> dict[str, Any]:
    return {"header": {"flags": flags}}


class FakeIPRoute:
    """Answers `link("dump")` with interrupted dumps a given number of times."""

    def __init__(self, interrupted: int) -> None:
        self.interrupted = interrupted
        self.calls = 0

    def link(self, command: str, **kwargs: Any) -> list[dict[str, Any]]:
        self.calls += 1
        if self.calls <= self.interrupted:
            return [message(2), message(2 | NLM_F_DUMP_INTR)]
        return [message(2), message(2)]

    def close(self) -> None:
        pass


@pytest.mark.parametrize("interrupted", [0, 1, 5])
def test_interrupted_dumps_are_repeated(interrupted: int) -> None:
    fake = FakeIPRoute(interrupted)
    assert len(Rtnl(fake, "").dump("list links", "link")) == 2
    assert fake.calls == interrupted + 1


def test_a_dump_that_never_settles_is_an_error() -> None:
    with pytest.raises(NetlinkError) as info:
        Rtnl(FakeIPRoute(100), "").dump("list links", "link")
    assert info.value.errno == errno.EINTR


@pytest.mark.parametrize(
    ("raised", "expected", "code"),
    [
        (PyrouteNetlinkError(errno.ENODEV), LinkNotFound, errno.ENODEV),
        (PyrouteNetlinkError(errno.EEXIST), NetlinkError, errno.EEXIST),
        (PyrouteNetlinkError(errno.EPERM, "not permitted"), NetlinkError, errno.EPERM),
        (NetlinkDumpInterrupted(), NetlinkError, errno.EIO),
    ],
)
def test_pyroute2_errors_become_podnet_errors(
    raised: Exception, expected: type[NetlinkError], code: int
) -> None:
    with pytest.raises(NetlinkError) as info, netlink_errors("doing it"):
        raise raised
    assert type(info.value) is expected
    assert info.value.errno == code
    assert "doing it" in str(info.value)
    assert info.value.__cause__ is raised


@pytest.mark.root
def test_open_missing_netns(tmp_path: Any) -> None:
    with pytest.raises(NetnsError) as info:
        open_rtnl(str(tmp_path / "missing"))
    assert info.value.errno == errno.ENOENT

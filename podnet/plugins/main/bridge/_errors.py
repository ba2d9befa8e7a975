"""The last line of error translation for the bridge's verbs: a netlink, namespace or
nft failure that no step turned into a more specific message still reaches the runtime
as a CNI error with the failed operation in its words, never as an internal error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from podnet.cni import CNIError
from podnet.netlink import NetlinkError, NetnsError, NftError


@contextmanager
def as_cni_errors() -> Iterator[None]:
    try:
        yield
    except (NetlinkError, NetnsError, NftError) as exc:
        raise CNIError(exc.strerror or str(exc)) from exc

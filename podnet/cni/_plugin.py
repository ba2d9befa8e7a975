"""What a plugin is to the skel: a name, the versions it speaks, and one function per verb."""

from __future__ import annotations

from collections.abc import Callable

from podnet._record import FrozenRecord
from podnet.cni._request import Request
from podnet.cni._result import Result
from podnet.cni._version import ALL_VERSIONS

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Final

AddFunc = Callable[[Request], Result]
VerbFunc = Callable[[Request], None]


class Plugin(FrozenRecord):
    """A CNI plugin. A verb left as None succeeds without doing anything, as in libcni's
    skel; `add` and `delete` are mandatory."""

    __slots__ = ("name", "add", "delete", "check", "gc", "status", "versions")

    def __init__(
        self,
        name: str,
        add: AddFunc,
        delete: VerbFunc,
        check: VerbFunc | None = None,
        gc: VerbFunc | None = None,
        status: VerbFunc | None = None,
        versions: tuple[str, ...] = ALL_VERSIONS,
    ) -> None:
        self.name: Final = name
        self.add: Final = add
        self.delete: Final = delete
        self.check: Final = check
        self.gc: Final = gc
        self.status: Final = status
        self.versions: Final = versions

    @property
    def about(self) -> str:
        return f"CNI plugin {self.name} (podnet)"

"""Errors of the runtime side, all CNIErrors so callers see one kind of failure.

CNIError (podnet.cni)
├── ConfError (InvalidConfig, 7)   a network config file that cannot be used
│   └── NoNetworkConfig            nothing usable in the conf dir
├── PluginFailed                   one plugin's answer, with its name and the verb:
│                                  "plugin bridge failed (add): ..." (code of the cause)
├── PluginErrors                   several of them together (DEL, GC, a failed undo)
└── SandboxError (999)             pod bookkeeping: unknown pod, duplicate name, ...
    ├── PodNotFound
    └── PodExists
"""

from __future__ import annotations

from collections.abc import Sequence

from podnet.cni import CODE_INTERNAL, CNIError, InvalidConfig


class ConfError(InvalidConfig):
    """A network config file that cannot be used; the message names the file."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"invalid CNI config {path}: {reason}")
        self.path = path
        self.reason = reason


class NoNetworkConfig(InvalidConfig):
    """The conf dir holds no network config at all (containerd: NetworkPluginNotReady)."""


class PluginFailed(CNIError):
    """One plugin invocation failed; `cause` is the error as the plugin reported it."""

    def __init__(self, plugin_type: str, verb: str, cause: CNIError) -> None:
        super().__init__(
            f"plugin {plugin_type} failed ({verb}): {cause.msg}", cause.details, code=cause.code
        )
        self.plugin_type = plugin_type
        self.verb = verb
        self.cause = cause


class PluginErrors(CNIError):
    """Several failures reported together: every plugin got its turn, these failed.
    The code is the first failure's."""

    def __init__(self, errors: Sequence[CNIError], *, context: str = "") -> None:
        assert errors, "PluginErrors needs at least one error"
        text = "; ".join(str(e) for e in errors)
        super().__init__(f"{context}: {text}" if context else text, code=errors[0].code)
        self.errors = tuple(errors)


class SandboxError(CNIError):
    code = CODE_INTERNAL


class PodNotFound(SandboxError):
    pass


class PodExists(SandboxError):
    pass

"""CNI errors, each carrying the spec's code.

    CNIError (code chosen per instance; 999 when unknown)
    ├── IncompatibleVersion      1
    ├── UnsupportedField         2
    ├── UnknownContainer         3
    ├── InvalidEnvironment       4
    ├── IOFailure                5
    ├── DecodingFailure          6
    ├── InvalidConfig            7
    ├── InvalidNetNS             8
    ├── TryAgainLater           11
    ├── PluginNotAvailable      50
    ├── LimitedConnectivity     51
    └── InternalError          999

A plugin answers an error with the JSON object `to_json` builds, on stdout, and exit 1.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any


CODE_INCOMPATIBLE_VERSION = 1
CODE_UNSUPPORTED_FIELD = 2
CODE_UNKNOWN_CONTAINER = 3
CODE_INVALID_ENVIRONMENT = 4
CODE_IO_FAILURE = 5
CODE_DECODING_FAILURE = 6
CODE_INVALID_CONFIG = 7
CODE_INVALID_NETNS = 8
CODE_TRY_AGAIN_LATER = 11
CODE_PLUGIN_NOT_AVAILABLE = 50
CODE_LIMITED_CONNECTIVITY = 51
CODE_INTERNAL = 999


class CNIError(Exception):
    """An error a plugin reports to its caller: spec code, message, details."""

    code: int = CODE_INTERNAL

    def __init__(self, msg: str, details: str = "", *, code: int | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.msg}; {self.details}" if self.details else self.msg

    def to_json(self, cni_version: str) -> dict[str, Any]:
        return {
            "cniVersion": cni_version,
            "code": self.code,
            "msg": self.msg,
            "details": self.details,
        }

    @classmethod
    def from_json(cls, obj: Any) -> CNIError:
        """The error a plugin printed, as the most specific class for its code."""
        if not isinstance(obj, dict) or not isinstance(obj.get("code"), int):
            raise ValueError("not a CNI error object")
        code = obj["code"]
        msg = str(obj.get("msg", ""))
        details = str(obj.get("details", "") or "")
        kind = _BY_CODE.get(code, CNIError)
        return kind(msg, details, code=code)


class IncompatibleVersion(CNIError):
    code = CODE_INCOMPATIBLE_VERSION


class UnsupportedField(CNIError):
    code = CODE_UNSUPPORTED_FIELD


class UnknownContainer(CNIError):
    code = CODE_UNKNOWN_CONTAINER


class InvalidEnvironment(CNIError):
    code = CODE_INVALID_ENVIRONMENT


class IOFailure(CNIError):
    code = CODE_IO_FAILURE


class DecodingFailure(CNIError):
    code = CODE_DECODING_FAILURE


class InvalidConfig(CNIError):
    code = CODE_INVALID_CONFIG


class InvalidNetNS(CNIError):
    code = CODE_INVALID_NETNS


class TryAgainLater(CNIError):
    code = CODE_TRY_AGAIN_LATER


class PluginNotAvailable(CNIError):
    code = CODE_PLUGIN_NOT_AVAILABLE


class LimitedConnectivity(CNIError):
    code = CODE_LIMITED_CONNECTIVITY


class InternalError(CNIError):
    code = CODE_INTERNAL


_BY_CODE: dict[int, type[CNIError]] = {
    cls.code: cls
    for cls in (
        IncompatibleVersion,
        UnsupportedField,
        UnknownContainer,
        InvalidEnvironment,
        IOFailure,
        DecodingFailure,
        InvalidConfig,
        InvalidNetNS,
        TryAgainLater,
        PluginNotAvailable,
        LimitedConnectivity,
    )
}

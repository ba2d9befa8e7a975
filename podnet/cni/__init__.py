"""The CNI protocol (spec 1.1.0): errors with their codes, versions, results and their
conversion, request parsing and validation, the skel, and invoking other plugins."""

from __future__ import annotations

from podnet._lazy import load_export

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from podnet.cni._attachment_lock import (
        ATTACHMENT_VERBS,
        DEFAULT_LOCK_DIR,
        LOCK_DIR_ENV,
        LOCKED_ENV,
    )
    from podnet.cni._errors import (
        CODE_INTERNAL,
        CNIError,
        DecodingFailure,
        IncompatibleVersion,
        InternalError,
        InvalidConfig,
        InvalidEnvironment,
        IOFailure,
        PluginNotAvailable,
        TryAgainLater,
        UnknownContainer,
        UnsupportedField,
    )
    from podnet.cni._files import atomic_write, fsync_dir, read_file, remove_durably, write_temp
    from podnet.cni._flock import LockTimeout, flock_within
    from podnet.cni._host import Host, HostState, Pending, run_after_answer
    from podnet.cni._invoke import (
        Exec,
        RawExec,
        decode_result,
        exec_plugin,
        find_in_path,
        plugin_environ,
        plugin_error,
    )
    from podnet.cni._log import log
    from podnet.cni._plugin import Plugin
    from podnet.cni._request import (
        Request,
        parse_cni_args,
        request_from_env,
        validate_container_id,
        validate_ifname,
        validate_network_name,
    )
    from podnet.cni._result import DNS, Interface, IPConfig, Result, Route
    from podnet.cni._rules import (
        LEGACY_ATTACHMENTS_KEY,
        VALID_ATTACHMENTS_KEY,
        RouteConf,
        fixup_result_version,
        parse_route,
        prev_result,
        valid_attachments,
    )
    from podnet.cni._skel import call, dispatch, plugin_main
    from podnet.cni._trace import Span, Trace
    from podnet.cni._values import is_int
    from podnet.cni._version import (
        ALL_VERSIONS,
        CURRENT_VERSION,
        at_least,
        negotiate,
        parse_version,
    )

# name -> the private module that holds it, imported on first use (see podnet._lazy)
_EXPORTS: dict[str, tuple[str, ...]] = {
    "podnet.cni._attachment_lock": (
        "ATTACHMENT_VERBS",
        "DEFAULT_LOCK_DIR",
        "LOCK_DIR_ENV",
        "LOCKED_ENV",
    ),
    "podnet.cni._errors": (
        "CODE_INTERNAL",
        "CNIError",
        "DecodingFailure",
        "IncompatibleVersion",
        "InternalError",
        "InvalidConfig",
        "InvalidEnvironment",
        "IOFailure",
        "PluginNotAvailable",
        "TryAgainLater",
        "UnknownContainer",
        "UnsupportedField",
    ),
    "podnet.cni._files": ("atomic_write", "fsync_dir", "read_file", "remove_durably", "write_temp"),
    "podnet.cni._flock": ("LockTimeout", "flock_within"),
    "podnet.cni._host": ("Host", "HostState", "Pending", "run_after_answer"),
    "podnet.cni._invoke": (
        "Exec",
        "RawExec",
        "decode_result",
        "exec_plugin",
        "find_in_path",
        "plugin_environ",
        "plugin_error",
    ),
    "podnet.cni._log": ("log",),
    "podnet.cni._plugin": ("Plugin",),
    "podnet.cni._request": (
        "Request",
        "parse_cni_args",
        "request_from_env",
        "validate_container_id",
        "validate_ifname",
        "validate_network_name",
    ),
    "podnet.cni._result": ("DNS", "Interface", "IPConfig", "Result", "Route"),
    "podnet.cni._rules": (
        "LEGACY_ATTACHMENTS_KEY",
        "VALID_ATTACHMENTS_KEY",
        "RouteConf",
        "fixup_result_version",
        "parse_route",
        "prev_result",
        "valid_attachments",
    ),
    "podnet.cni._skel": ("call", "dispatch", "plugin_main"),
    "podnet.cni._trace": ("Span", "Trace"),
    "podnet.cni._values": ("is_int",),
    "podnet.cni._version": (
        "ALL_VERSIONS",
        "CURRENT_VERSION",
        "at_least",
        "negotiate",
        "parse_version",
    ),
}


def __getattr__(name: str) -> object:
    return load_export(__name__, _EXPORTS, name)


__all__ = [
    "LEGACY_ATTACHMENTS_KEY",
    "VALID_ATTACHMENTS_KEY",
    "RouteConf",
    "fixup_result_version",
    "is_int",
    "parse_route",
    "prev_result",
    "valid_attachments",
    "Exec",
    "Host",
    "RawExec",
    "Span",
    "Trace",
    "HostState",
    "Pending",
    "run_after_answer",
    "ALL_VERSIONS",
    "CODE_INTERNAL",
    "CURRENT_VERSION",
    "CNIError",
    "DNS",
    "DecodingFailure",
    "IOFailure",
    "IPConfig",
    "IncompatibleVersion",
    "Interface",
    "InternalError",
    "InvalidConfig",
    "InvalidEnvironment",
    "Plugin",
    "PluginNotAvailable",
    "Request",
    "Result",
    "Route",
    "TryAgainLater",
    "UnknownContainer",
    "UnsupportedField",
    "at_least",
    "atomic_write",
    "call",
    "decode_result",
    "dispatch",
    "exec_plugin",
    "find_in_path",
    "log",
    "negotiate",
    "parse_cni_args",
    "parse_version",
    "plugin_environ",
    "plugin_error",
    "plugin_main",
    "read_file",
    "request_from_env",
    "validate_container_id",
    "validate_ifname",
    "validate_network_name",
    "write_temp",
    "fsync_dir",
    "ATTACHMENT_VERBS",
    "DEFAULT_LOCK_DIR",
    "LOCK_DIR_ENV",
    "LOCKED_ENV",
    "remove_durably",
    "LockTimeout",
    "flock_within",
]

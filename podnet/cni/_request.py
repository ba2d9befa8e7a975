"""One plugin invocation, read from the environment and stdin, and validated as the
reference skel does: required variables per verb, container ID, interface and
network name rules."""

from __future__ import annotations

from collections.abc import Mapping

from podnet import _json as json
from podnet._record import FrozenRecord
from podnet.cni._errors import DecodingFailure, InvalidConfig, InvalidEnvironment
from podnet.cni._host import Host
from podnet.cni._version import config_version

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any, Final

VERBS = ("ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION")

# Variables each verb requires (CNI_COMMAND is always required), as libcni's skel.
_REQUIRED: dict[str, tuple[str, ...]] = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
    "GC": ("CNI_PATH",),
    "STATUS": ("CNI_PATH",),
    "VERSION": (),
}
_ENV_ORDER = ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH")

# libcni's [a-zA-Z0-9][a-zA-Z0-9_.\-]* for container IDs and network names (checked by
# hand: `re` and the `enum` it imports cost a plugin run in-process ~2 ms).
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_CHARS = _NAME_START | frozenset("_.-")
MAX_IFNAME_LENGTH = 15


def _valid_name(value: str) -> bool:
    return value[:1] in _NAME_START and _NAME_CHARS.issuperset(value)


def validate_container_id(value: str) -> None:
    if not value:
        raise InvalidEnvironment("missing containerID")
    if not _valid_name(value):
        raise InvalidEnvironment("invalid characters in containerID", value)


def validate_ifname(value: str) -> None:
    if not value:
        raise InvalidEnvironment("interface name is empty")
    # IFNAMSIZ counts bytes, as the kernel and libcni do: "\u00e9" * 15 is 30 of them.
    if len(value.encode(errors="surrogateescape")) > MAX_IFNAME_LENGTH:
        raise InvalidEnvironment(
            "interface name is too long",
            f"interface name should be less than {MAX_IFNAME_LENGTH + 1} characters",
        )
    if value in (".", ".."):
        raise InvalidEnvironment("interface name is . or ..")
    if not value.isprintable() and _not_utf8(value):
        # bytes that are not UTF-8 arrive as lone surrogates; nothing here can store them
        raise InvalidEnvironment("interface name is not UTF-8")
    if any(c in "/:" or c.isspace() for c in value):
        raise InvalidEnvironment("interface name contains / or : or whitespace characters")


def validate_network_name(value: Any) -> str:
    if not isinstance(value, str) or value == "":
        raise InvalidConfig("missing network name")
    if not _valid_name(value):
        raise InvalidConfig("invalid characters found in network name", value)
    return value


def parse_cni_args(text: str) -> dict[str, str]:
    """CNI_ARGS 'K1=V1;K2=V2' -> {'K1': 'V1', ...}."""
    out: dict[str, str] = {}
    if not text:
        return out
    for pair in text.split(";"):
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidEnvironment(f"ARGS: invalid pair {pair!r}", "CNI_ARGS")
        out[key] = value
    return out


class Request(FrozenRecord):
    __slots__ = (
        "command",
        "container_id",
        "netns",
        "ifname",
        "args",
        "path",
        "netns_override",
        "stdin",
        "config",
        "host",
    )
    _compared = __slots__[:-1]  # not the host

    def __init__(
        self,
        command: str,
        container_id: str = "",
        netns: str = "",
        ifname: str = "",
        args: str = "",
        path: tuple[str, ...] = (),
        netns_override: str = "",
        stdin: bytes = b"",
        config: dict[str, Any] | None = None,
        host: Host | None = None,
    ) -> None:
        self.command: Final = command
        self.container_id: Final = container_id
        self.netns: Final = netns
        self.ifname: Final = ifname
        self.args: Final = args
        self.path: Final = path
        self.netns_override: Final = netns_override
        self.stdin: Final = stdin
        self.config: Final[dict[str, Any]] = {} if config is None else config
        # What the process running the verb provides it (see podnet.cni._host); a
        # delegate's request keeps its caller's.
        self.host: Final[Host] = Host() if host is None else host

    @property
    def cni_version(self) -> str:
        return config_version(self.config)

    @property
    def network_name(self) -> str:
        return str(self.config.get("name", ""))

    def cni_args(self) -> dict[str, str]:
        return parse_cni_args(self.args)

    def environ(self) -> dict[str, str]:
        """The CNI_* variables of this request, to hand to a delegate."""
        env = {
            "CNI_COMMAND": self.command,
            "CNI_CONTAINERID": self.container_id,
            "CNI_NETNS": self.netns,
            "CNI_IFNAME": self.ifname,
            "CNI_ARGS": self.args,
            "CNI_PATH": ":".join(self.path),
        }
        if self.netns_override:
            env["CNI_NETNS_OVERRIDE"] = self.netns_override
        return {k: v for k, v in env.items() if v}

    def with_config(self, command: str, config: dict[str, Any]) -> Request:
        """This request as a delegate gets it: another verb, another config."""
        return Request(
            command,
            self.container_id,
            self.netns,
            self.ifname,
            self.args,
            self.path,
            self.netns_override,
            stdin=json.dumps(config).encode(),
            config=config,
            host=self.host,
        )


def request_from_env(environ: Mapping[str, str], stdin: bytes, host: Host | None = None) -> Request:
    command = environ.get("CNI_COMMAND", "")
    required = _REQUIRED.get(command, ())
    missing = [
        name
        for name in _ENV_ORDER
        if not environ.get(name) and (name == "CNI_COMMAND" or name in required)
    ]
    if missing:
        raise InvalidEnvironment(f"required env variables [{','.join(missing)}] missing")
    if command not in _REQUIRED:
        raise InvalidEnvironment(f"unknown CNI_COMMAND: {command}")
    container_id = environ.get("CNI_CONTAINERID", "")
    ifname = environ.get("CNI_IFNAME", "")
    args = environ.get("CNI_ARGS", "")
    if command == "VERSION":
        config = _decode_version_request(stdin)
        stdin = b""
    else:
        config = decode_config(stdin)
        validate_network_name(config.get("name"))
        if command in ("ADD", "CHECK", "DEL"):
            validate_container_id(container_id)
            validate_ifname(ifname)
        parse_cni_args(args)
    return Request(
        command=command,
        container_id=container_id,
        netns=environ.get("CNI_NETNS", ""),
        ifname=ifname,
        args=args,
        path=tuple(p for p in environ.get("CNI_PATH", "").split(":") if p),
        netns_override=environ.get("CNI_NETNS_OVERRIDE", ""),
        stdin=stdin,
        config=config,
        host=host,
    )


def decode_config(stdin: bytes) -> dict[str, Any]:
    try:
        config = json.loads(stdin)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than the interpreter's stack allows
        raise DecodingFailure(f"error unmarshall network config: {_reason(exc)}") from None
    if not isinstance(config, dict):
        raise DecodingFailure("error unmarshall network config: not a JSON object")
    config_version(config)
    return config


def _decode_version_request(stdin: bytes) -> dict[str, Any]:
    # VERSION's stdin only carries {"cniVersion": ...}; anything unreadable is ignored.
    try:
        obj = json.loads(stdin) if stdin.strip() else {}
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _reason(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


def _not_utf8(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return True
    return False

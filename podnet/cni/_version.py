"""CNI spec versions: parsing, comparison, negotiation."""

from __future__ import annotations

from collections.abc import Iterable

from podnet.cni._errors import DecodingFailure, IncompatibleVersion

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any

CURRENT_VERSION = "1.1.0"
ALL_VERSIONS: tuple[str, ...] = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

# The first spec version of each verb that appeared after 0.1.0.
MIN_VERSION_FOR_VERB = {"CHECK": "0.4.0", "GC": "1.1.0", "STATUS": "1.1.0"}


def parse_version(text: str) -> tuple[int, int, int]:
    """'0.3.1' -> (0, 3, 1); a config without cniVersion means 0.1.0, as libcni reads it."""
    if text == "":
        return (0, 1, 0)
    parts = text.split(".")
    # ASCII digits only: str.isdigit() also accepts "\u00b2", which int() refuses.
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
        raise DecodingFailure(f"invalid version {text!r}: must be of the form major.minor.patch")
    return (int(parts[0]), int(parts[1]), int(parts[2]))


def at_least(version: str, minimum: str) -> bool:
    return parse_version(version) >= parse_version(minimum)


def config_version(config: dict[str, Any]) -> str:
    """The cniVersion of a (plugin or list) config; '' means 0.1.0."""
    value = config.get("cniVersion", "")
    if not isinstance(value, str):
        raise DecodingFailure("cniVersion must be a string")
    parse_version(value)
    return value or "0.1.0"


def negotiate(config: dict[str, Any], supported: Iterable[str] = ALL_VERSIONS) -> str:
    """The version a runtime uses for a config list: the highest of cniVersion and
    cniVersions that this implementation supports (entries newer than we know are ignored)."""
    known = {parse_version(v): v for v in supported}
    candidates = []
    declared = config.get("cniVersions")
    if declared is not None:
        if not isinstance(declared, list) or not all(isinstance(v, str) for v in declared):
            raise DecodingFailure("cniVersions must be a list of strings")
        candidates.extend(declared)
    if "cniVersion" in config or not candidates:
        candidates.append(config_version(config))
    usable = [v for v in candidates if parse_version(v) in known]
    if not usable:
        raise IncompatibleVersion(
            "incompatible CNI versions",
            f"config versions {sorted(set(candidates))}, supported {sorted(known.values())}",
        )
    return known[max(parse_version(v) for v in usable)]

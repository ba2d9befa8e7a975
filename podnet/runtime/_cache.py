"""The result cache, in libcni's on-disk format, so libcni-based tools and podnet read each
other's entries.

One file per attachment, `<cacheDir>/results/<network>-<containerID>-<ifname>`, mode 0600
in a 0700 dir, holding (field order as libcni's `cachedInfo`):

    {"kind": "cniCacheV1", "containerId": ..., "config": <base64 of the whole list's bytes,
     as Go marshals a []byte>, "ifName": ..., "networkName": ..., "netns": ...,
     "cniArgs": [[k, v], ...], "capabilityArgs": {...}, "result": {...}}

netns, cniArgs, capabilityArgs and result are left out when empty (Go's omitempty).
Files that are not `cniCacheV1` are read, as libcni does, as a bare result of an older
libcni; they are no attachment for GC.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from podnet.cni import DecodingFailure, IOFailure, atomic_write, remove_durably
from podnet.runtime._types import RuntimeConf, as_args

CACHE_KIND = "cniCacheV1"


@dataclass(frozen=True)
class CachedAttachment:
    """One cached attachment: what ADD ran with, and its final result."""

    container_id: str
    ifname: str
    network_name: str
    config: bytes = b""
    netns: str = ""
    cni_args: tuple[tuple[str, str], ...] = ()
    capability_args: Mapping[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None

    def runtime_conf(self, *, netns: str | None = None) -> RuntimeConf:
        return RuntimeConf(
            container_id=self.container_id,
            netns=self.netns if netns is None else netns,
            ifname=self.ifname,
            args=self.cni_args,
            capability_args=dict(self.capability_args),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": CACHE_KIND,
            "containerId": self.container_id,
            "config": base64.b64encode(self.config).decode(),
            "ifName": self.ifname,
            "networkName": self.network_name,
        }
        if self.netns:
            out["netns"] = self.netns
        if self.cni_args:
            out["cniArgs"] = [list(pair) for pair in self.cni_args]
        if self.capability_args:
            out["capabilityArgs"] = dict(self.capability_args)
        if self.result:
            out["result"] = self.result
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> CachedAttachment:
        try:
            config = base64.b64decode(obj.get("config") or "", validate=True)
            args = obj.get("cniArgs") or []
            if not all(isinstance(p, list) and len(p) == 2 for p in args):
                raise ValueError("cniArgs must be [key, value] pairs")
            capability_args = obj.get("capabilityArgs") or {}
            result = obj.get("result") or None
            if not isinstance(capability_args, dict) or not isinstance(result, dict | None):
                raise ValueError("capabilityArgs and result must be objects")
            return cls(
                container_id=str(obj.get("containerId", "")),
                ifname=str(obj.get("ifName", "")),
                network_name=str(obj.get("networkName", "")),
                config=config,
                netns=str(obj.get("netns", "")),
                cni_args=as_args(args),
                capability_args=capability_args,
                result=result,
            )
        except (ValueError, TypeError, binascii.Error) as exc:
            raise DecodingFailure(f"invalid cache entry: {exc}") from None


class ResultCache:
    """The `results` directory under a CNI cache dir (default /var/lib/cni)."""

    def __init__(self, cache_dir: str) -> None:
        self.cache_dir = cache_dir
        self.results_dir = os.path.join(cache_dir, "results")

    def path(self, network_name: str, container_id: str, ifname: str) -> str:
        if not (network_name and container_id and ifname):
            raise IOFailure(
                "cache file path requires network name, container ID and interface name",
                f"got {network_name!r}, {container_id!r}, {ifname!r}",
            )
        return os.path.join(self.results_dir, f"{network_name}-{container_id}-{ifname}")

    def write(self, attachment: CachedAttachment) -> str:
        path = self.path(attachment.network_name, attachment.container_id, attachment.ifname)
        data = json.dumps(attachment.to_json(), separators=(",", ":")).encode()
        try:
            atomic_write(path, data, mode=0o600, dir_mode=0o700)
        except OSError as exc:
            raise IOFailure(f"failed to write cached result {path}: {exc.strerror}") from None
        return path

    def read(self, network_name: str, container_id: str, ifname: str) -> CachedAttachment | None:
        """The cached attachment, None when there is none; a legacy file yields only its
        result. Raises DecodingFailure for a file that is neither."""
        path = self.path(network_name, container_id, ifname)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IOFailure(f"failed to read cached result {path}: {exc.strerror}") from None
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise DecodingFailure(f"cached result {path} is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise DecodingFailure(f"cached result {path} is not a JSON object")
        if obj.get("kind") != CACHE_KIND:
            if "cniVersion" not in obj:
                raise DecodingFailure(f"cached result {path} has an unknown format")
            return CachedAttachment(container_id, ifname, network_name, result=obj)
        return CachedAttachment.from_json(obj)

    def delete(self, network_name: str, container_id: str, ifname: str) -> None:
        try:
            remove_durably(self.path(network_name, container_id, ifname))
        except IOFailure:
            pass  # no name to have an entry under (libcni ignores it)
        except OSError as exc:
            raise IOFailure(f"removing cached result: {exc.strerror}") from None

    def attachments(self, container_id: str = "") -> list[CachedAttachment]:
        """Every readable cniCacheV1 entry (of one container if given), as libcni's
        GetCachedAttachments: unreadable and legacy files are skipped."""
        try:
            names = sorted(os.listdir(self.results_dir))
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            if container_id and f"-{container_id}-" not in name:
                continue
            try:
                with open(os.path.join(self.results_dir, name), "rb") as handle:
                    obj = json.loads(handle.read())
                if not isinstance(obj, dict) or obj.get("kind") != CACHE_KIND:
                    continue
                entry = CachedAttachment.from_json(obj)
            except (OSError, ValueError, UnicodeDecodeError, RecursionError, DecodingFailure):
                continue
            if container_id and entry.container_id != container_id:
                continue
            if entry.ifname and entry.network_name and entry.container_id:
                found.append(entry)
        return found

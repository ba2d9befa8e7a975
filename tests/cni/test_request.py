from __future__ import annotations

import json

import pytest

from podnet.cni import (
    CNIError,
    parse_cni_args,
    request_from_env,
)

CONFIG = json.dumps({"cniVersion": "1.1.0", "name": "cbr0", "type": "x"}).encode()
BASE = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "abc123",
    "CNI_NETNS": "/run/netns/p1",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/opt/cni/bin",
}


def env(**changes: str | None) -> dict[str, str]:
    out = dict(BASE)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


@pytest.mark.parametrize(
    ("environ", "stdin", "code", "msg"),
    [
        (env(CNI_COMMAND=None), CONFIG, 4, "required env variables [CNI_COMMAND] missing"),
        (env(CNI_CONTAINERID=None), CONFIG, 4, "required env variables [CNI_CONTAINERID] missing"),
        (env(CNI_NETNS=None), CONFIG, 4, "required env variables [CNI_NETNS] missing"),
        (env(CNI_IFNAME=None), CONFIG, 4, "required env variables [CNI_IFNAME] missing"),
        (env(CNI_PATH=None), CONFIG, 4, "required env variables [CNI_PATH] missing"),
        (
            env(CNI_NETNS=None, CNI_IFNAME=None),
            CONFIG,
            4,
            "required env variables [CNI_NETNS,CNI_IFNAME] missing",
        ),
        (env(CNI_COMMAND="FROB"), CONFIG, 4, "unknown CNI_COMMAND: FROB"),
        (env(CNI_CONTAINERID="-bad"), CONFIG, 4, "invalid characters in containerID"),
        (env(CNI_CONTAINERID="a/b"), CONFIG, 4, "invalid characters in containerID"),
        (env(CNI_IFNAME="x" * 16), CONFIG, 4, "interface name is too long"),
        (env(CNI_IFNAME=".."), CONFIG, 4, "interface name is . or .."),
        (
            env(CNI_IFNAME="et h0"),
            CONFIG,
            4,
            "interface name contains / or : or whitespace characters",
        ),
        (
            env(CNI_IFNAME="eth:0"),
            CONFIG,
            4,
            "interface name contains / or : or whitespace characters",
        ),
        (env(CNI_ARGS="K8S_POD_NAME"), CONFIG, 4, "ARGS: invalid pair 'K8S_POD_NAME'"),
        # IFNAMSIZ counts bytes: 15 characters of 2 bytes each are 30 (issue 13)
        (env(CNI_IFNAME="\u00e9" * 15), CONFIG, 4, "interface name is too long"),
        (env(CNI_IFNAME="\u00e9" * 8), CONFIG, 4, "interface name is too long"),
        (env(CNI_IFNAME="eth\udcff"), CONFIG, 4, "interface name is not UTF-8"),
        # parse failures of stdin are code 6 whatever their cause (issue 13)
        (env(), b"[" * 100_000 + b"]" * 100_000, 6, None),
        (env(), b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, 6, None),
        (env(), b"\xff\xfe{}", 6, None),
        (env(), '{"cniVersion": "1.0.\u00b2", "name": "n"}'.encode(), 6, None),
        (env(), '{"cniVersion": "\u0661.0.0", "name": "n"}'.encode(), 6, None),
        (env(), b"{not json", 6, None),
        (env(), b"[]", 6, None),
        (env(), b'{"cniVersion": "1.1.0"}', 7, "missing network name"),
        (
            env(),
            b'{"cniVersion": "1.1.0", "name": "bad name"}',
            7,
            "invalid characters found in network name",
        ),
        (env(), b'{"cniVersion": "x", "name": "n"}', 6, None),
        (env(CNI_COMMAND="DEL", CNI_NETNS=None, CNI_IFNAME=None), CONFIG, 4, None),
        (
            env(CNI_COMMAND="GC", CNI_PATH=None),
            CONFIG,
            4,
            "required env variables [CNI_PATH] missing",
        ),
    ],
)
def test_invalid_requests(
    environ: dict[str, str], stdin: bytes, code: int, msg: str | None
) -> None:
    with pytest.raises(CNIError) as info:
        request_from_env(environ, stdin)
    assert info.value.code == code
    if msg is not None:
        assert info.value.msg == msg


@pytest.mark.parametrize(
    "environ",
    [
        env(),
        env(CNI_COMMAND="DEL", CNI_NETNS=None),
        env(CNI_COMMAND="CHECK"),
        {"CNI_COMMAND": "GC", "CNI_PATH": "/opt/cni/bin"},
        {"CNI_COMMAND": "STATUS", "CNI_PATH": "/opt/cni/bin"},
        {"CNI_COMMAND": "VERSION"},
        env(CNI_IFNAME="x" * 15),
        env(CNI_IFNAME="\u00e9" * 7 + "x"),  # 15 bytes
        env(CNI_CONTAINERID="A.b_c-9"),
    ],
)
def test_valid_requests(environ: dict[str, str]) -> None:
    request = request_from_env(environ, CONFIG)
    assert request.command == environ["CNI_COMMAND"]


def test_request_fields() -> None:
    request = request_from_env(
        env(CNI_ARGS="IgnoreUnknown=1;IP=10.0.0.5", CNI_PATH="/a:/b"), CONFIG
    )
    assert request.path == ("/a", "/b")
    assert request.cni_args() == {"IgnoreUnknown": "1", "IP": "10.0.0.5"}
    assert request.network_name == "cbr0"
    assert request.cni_version == "1.1.0"
    delegated = request.with_config("DEL", {"cniVersion": "1.1.0", "name": "cbr0", "type": "y"})
    assert delegated.environ()["CNI_COMMAND"] == "DEL"
    assert json.loads(delegated.stdin)["type"] == "y"


def test_parse_cni_args() -> None:
    assert parse_cni_args("") == {}
    assert parse_cni_args("A=1;;B=x=y") == {"A": "1", "B": "x=y"}

"""bridge CHECK and STATUS. CHECK reads state and never changes it: IPAM's reservation,
the bridge, the pod's veth, its peer attached to the bridge, the pod's addresses and
routes as prevResult has them, and the masquerade elements when ipMasq is on."""

from __future__ import annotations

from podnet.cni import CNIError, Interface, Request, Result, prev_result
from podnet.netlink import Link, NftError, Rtnl, find_link, get_link_by_index
from podnet.plugins._delegate import delegate
from podnet.plugins.main.bridge import _masq
from podnet.plugins.main.bridge._add import open_pod_netns
from podnet.plugins.main.bridge._config import BridgeConfig, owner_tag, parse_config
from podnet.plugins.main.bridge._errors import as_cni_errors
from podnet.plugins.main.bridge._pod import verify
from podnet.plugins.main.bridge._teardown import wait_for_teardown


def _prev_result(request: Request) -> Result:
    prev = prev_result(request.config)
    if prev is None:
        raise CNIError("Required prevResult missing")
    return prev


def _check_bridge(node: Rtnl, wanted: Interface | None, config: BridgeConfig) -> Link:
    if wanted is None:
        raise CNIError(f"CNI created bridge {config.bridge} in host namespace was not found")
    if wanted.sandbox:
        raise CNIError(f"Interface {wanted.name} should not be in sandbox")
    bridge = find_link(node, wanted.name)
    if bridge is None:
        raise CNIError(f"Interface name {wanted.name} not found")
    if bridge.kind != "bridge":
        raise CNIError(f"Interface {wanted.name} does not have link type of bridge")
    if wanted.mac and wanted.mac != bridge.mac:
        raise CNIError(f"Bridge interface {wanted.name} Mac doesn't match: {wanted.mac}")
    if bridge.promisc != config.promisc:
        raise CNIError(
            f"Bridge interface {wanted.name} configured Promisc Mode {config.promisc} "
            f"doesn't match current state: {bridge.promisc}"
        )
    return bridge


def _check_container(pod: Rtnl, wanted: Interface | None, request: Request) -> Link:
    if wanted is None:
        raise CNIError(f"CNI created interface in container {request.ifname} not found")
    link = find_link(pod, wanted.name)
    if link is None:
        raise CNIError(f"Interface name {wanted.name} not found")
    if link.kind != "veth":
        raise CNIError(f"Error: Container interface {link.name} not of type veth")
    if wanted.mac and wanted.mac != link.mac:
        raise CNIError(
            f"Interface {wanted.name} Mac {wanted.mac} doesn't match container Mac: {link.mac}"
        )
    return link


def _check_host_veth(node: Rtnl, result: Result, bridge: Link, container: Link) -> None:
    """Some interface of the result must be the container's peer, attached to the bridge."""
    for wanted in result.interfaces:
        if wanted.sandbox or wanted.name == bridge.name:
            continue
        link = find_link(node, wanted.name)
        if link is None or link.kind != "veth":
            continue
        if link.index != container.peer_index or link.peer_index != container.index:
            continue
        if link.master != bridge.index:
            continue
        if wanted.mac and wanted.mac != link.mac:
            raise CNIError(f"Interface {wanted.name} Mac doesn't match: {wanted.mac} not found")
        return
    # Name the peer that exists, if any, to say what is wrong with it.
    try:
        peer = get_link_by_index(node, container.peer_index)
        detail = f"peer {peer.name} is attached to #{peer.master}, not {bridge.name}"
    except (OSError, CNIError):
        detail = "the container interface has no peer in this namespace"
    raise CNIError(f"CNI veth created for bridge {bridge.name} was not found", detail)


def check(request: Request) -> None:
    config = parse_config(request)
    wait_for_teardown(request.host, request.netns, request.ifname)
    with as_cni_errors(), open_pod_netns(request.netns) as pod:
        node = request.host.node_rtnl()
        if config.layer3:
            delegate("CHECK", config.ipam_type, request.config, request)
        result = _prev_result(request)
        wanted_bridge = next((i for i in result.interfaces if i.name == config.bridge), None)
        wanted_container = next(
            (
                i
                for i in result.interfaces
                if i.name == request.ifname and i.sandbox == request.netns
            ),
            None,
        )
        bridge = _check_bridge(node, wanted_bridge, config)
        if wanted_container is None:
            sandboxes = [i.sandbox for i in result.interfaces if i.name == request.ifname]
            raise CNIError(
                f"Sandbox in prevResult {sandboxes[0] if sandboxes else ''} "
                f"doesn't match configured netns: {request.netns}"
            )
        container = _check_container(pod, wanted_container, request)
        _check_host_veth(node, result, bridge, container)
        verify(pod, container, result)
    if config.layer3 and config.ip_masq:
        _check_masquerade(config, request, result)


def _check_masquerade(config: BridgeConfig, request: Request, result: Result) -> None:
    owner = owner_tag(request.container_id, request.ifname)
    try:
        present = _masq.pod_addresses(config.network, owner)
    except NftError as exc:
        raise CNIError(f"failed to read masquerade rules: {exc.strerror}") from exc
    missing = [str(ip.address.ip) for ip in result.ips if ip.address.ip not in present]
    if missing:
        raise CNIError(f"masquerade for {', '.join(missing)} is missing from nftables")


def status(request: Request) -> None:
    """Ready when IPAM is (STATUS must be forwarded to a delegated IPAM plugin)."""
    config = parse_config(request)
    if config.layer3:
        delegate("STATUS", config.ipam_type, request.config, request)

"""bridge ADD.

Order: bridge; IPAM and the veth pair at once; gateway on the bridge; the pair's node end
joins the bridge; pod addresses and routes, masquerade, port up. IPAM waits mostly on
the disk (host-local fsyncs the reservation) and the pair on the kernel, so where the
host has a helper thread (the agent) IPAM runs there while this thread creates the pair,
and the pod waits for the longer of the two instead of both; elsewhere IPAM runs first,
as before. The node end joins the bridge only after the gateway is settled, so that the
stale-gateway check never sees the pod being added as a pod of the old subnet. Every step
that leaves something behind registers its undo on an ExitStack; any failure unwinds
them all (IPAM DEL included), success keeps them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

from podnet.cni import CNIError, Interface, InvalidEnvironment, Request, Result, log
from podnet.netlink import (
    Link,
    NetlinkError,
    NetnsError,
    NotANetns,
    Rtnl,
    delete_link,
    find_link,
    get_link,
    open_rtnl,
    set_link,
)
from podnet.plugins._delegate import delegate
from podnet.plugins.main.bridge._bridge import (
    enable_forwarding,
    ensure_bridge,
    ensure_gateway_address,
)
from podnet.plugins.main.bridge._config import (
    BridgeConfig,
    owner_tag,
    parse_config,
    validate_for_add,
)
from podnet.plugins.main.bridge._errors import as_cni_errors
from podnet.plugins.main.bridge._gateway import IPInterface, apply_gateways
from podnet.plugins.main.bridge._pod import configure
from podnet.plugins.main.bridge._teardown import wait_for_teardown
from podnet.plugins.main.bridge._veth import (
    attach,
    create_pair,
    ensure_vlan_interface,
    wait_port_up,
)

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from podnet.cni import Pending


def open_pod_netns(netns: str) -> Rtnl:
    try:
        return open_rtnl(netns)
    except NotANetns as exc:
        raise InvalidEnvironment(f"failed to open netns {netns!r}: {exc.strerror}") from exc
    except NetnsError as exc:
        raise CNIError(f"failed to open netns {netns!r}: {exc.strerror}") from exc


def _undo(what: str, step: Callable[[], object]) -> Callable[[], None]:
    """An undo step that logs its own failure, so the error that caused the unwinding
    is the one the runtime sees."""

    def run() -> None:
        try:
            step()
        except Exception as exc:
            log(f"bridge: undo {what} failed: {exc}")

    return run


def _delete_pod_link(pod: Rtnl, ifname: str) -> None:
    link = find_link(pod, ifname)
    if link is not None:
        delete_link(pod, link.index)


def add(request: Request) -> Result:
    config = parse_config(request)
    validate_for_add(config)
    wait_for_teardown(request.host, request.netns, request.ifname)  # a DEL just before
    with as_cni_errors(), open_pod_netns(request.netns) as pod:
        node = request.host.node_rtnl()  # warm: in the agent, reused by every pod
        with ExitStack() as undo:
            result = _add(request, config, node, pod, undo)
            undo.pop_all()  # success: keep everything
        return result


def _add(request: Request, config: BridgeConfig, node: Rtnl, pod: Rtnl, undo: ExitStack) -> Result:
    bridge = ensure_bridge(node, config)
    result = Result(interfaces=[Interface(name=bridge.name, mac=bridge.mac)])
    ipam = None
    if config.layer3:
        ipam = request.host.beside(
            lambda: delegate("ADD", config.ipam_type, request.config, request)
        )
    try:
        host, container = create_pair(
            node,
            pod,
            request.ifname,
            mtu=config.mtu,
            mac=config.mac,
            inner_label=request.netns,
            # a port at once unless the gateway has to be settled first (see above)
            master=0 if config.layer3 else bridge.index,
        )
    except BaseException:
        if ipam is not None:
            _release_when_done(ipam, request, config)
        raise
    undo.callback(_undo("veth", lambda: _delete_pod_link(pod, request.ifname)))
    if ipam is not None:
        reserved = ipam.wait()  # IPAM's error, if any, unwinds the veth
        assert isinstance(reserved, Result)
        undo.callback(
            _undo("IPAM ADD", lambda: delegate("DEL", config.ipam_type, request.config, request))
        )
        if not reserved.ips:
            raise CNIError("IPAM plugin returned missing IP config")
        result.ips, result.routes, result.dns = reserved.ips, reserved.routes, reserved.dns
        gateways = apply_gateways(result, config)
        _set_gateways(node, bridge, config, gateways, result)
    attach(node, host, bridge, config, vlan=config.vlan)
    result.interfaces[1:1] = [
        Interface(name=host.name, mac=host.mac),
        Interface(name=container.name, mac=container.mac, sandbox=request.netns),
    ]

    if config.layer3:
        configure(pod, request.netns, container, result, enable_dad=config.enable_dad)
        if config.ip_masq:
            # only a pod with a masquerade pays for importing these
            from podnet.netlink import NftError
            from podnet.plugins._declared import DeclaredTables
            from podnet.plugins.main.bridge import _masq

            owner = owner_tag(request.container_id, request.ifname)
            try:
                declared = request.host.state.get(DeclaredTables)
                _masq.add_pod(declared, config.network, owner, [i.address for i in result.ips])
            except NftError as exc:
                raise CNIError(f"failed to set up masquerade: {exc.strerror}") from exc
            undo.callback(_undo("masquerade", lambda: _masq.remove_pod(config.network, owner)))
    elif not config.disable_container_interface:
        set_link(pod, container.index, up=True)

    # The bridge's MAC may have changed when the first port joined; read both again
    # (waiting for the port reads the node end).
    if config.disable_container_interface:
        host = get_link(node, host.name)
    else:
        host = wait_port_up(node, host)
    result.interfaces[0].mac = get_link(node, bridge.name).mac
    result.interfaces[1].mac = host.mac
    if not config.dns.is_empty():
        result.dns = config.dns  # the config's DNS wins over IPAM's
    return result


def _release_when_done(ipam: Pending, request: Request, config: BridgeConfig) -> None:
    """The veth pair failed while IPAM ran beside it: once IPAM is done, release what it
    reserved (its own failure needs nothing: the pair's error is the one reported)."""
    try:
        ipam.wait()
    except Exception:
        return
    _undo("IPAM ADD", lambda: delegate("DEL", config.ipam_type, request.config, request))()


def _set_gateways(
    node: Rtnl, bridge: Link, config: BridgeConfig, gateways: list[IPInterface], result: Result
) -> None:
    if not gateways:
        return
    device = bridge
    if config.vlan:
        try:
            device = ensure_vlan_interface(node, bridge, config)
        except (CNIError, NetlinkError) as exc:
            raise CNIError(f"failed to create vlan interface: {exc}") from exc
        result.interfaces.append(Interface(name=device.name, mac=device.mac))
    for gateway in gateways:
        try:
            ensure_gateway_address(node, device, gateway, bridge=bridge, force=config.force_address)
        except NetlinkError as exc:
            raise CNIError(f"failed to set bridge addr: {exc.strerror}") from exc
        except CNIError as exc:
            raise CNIError(f"failed to set bridge addr: {exc.msg}", exc.details) from exc
    enable_forwarding({g.version for g in gateways})

"""host-local reservations that no sandbox owns: "no IP addresses available in range set"
comes from these, one leaked address at a time."""

from __future__ import annotations

import time

from podnet.agent import RESERVATION, Footprint, GarbageCollector, Gate, footprints
from podnet.cri import CRIClient
from podnet.doctor._facts import Facts
from podnet.doctor._finding import SKIPPED, Finding, ok, problem
from podnet.netlink import is_netns
from podnet.runtime import ResultCache

CRI_TIMEOUT = 10.0


def live_containers(facts: Facts) -> tuple[set[str], str]:
    """The container IDs whose attachments are in use, and how that was decided: the
    runtime's sandboxes over CRI when a socket is given (what the agent's GC trusts),
    else every cached attachment whose network namespace still exists."""
    socket = facts.config.cri_socket
    if socket:
        with CRIClient(socket, timeout=CRI_TIMEOUT) as client:
            return {sandbox.id for sandbox in client.list_pod_sandbox()}, f"CRI {socket}"
    cache = ResultCache(facts.config.cni_data_dir)
    alive = {a.container_id for a in cache.attachments() if a.netns and is_netns(a.netns)}
    return alive, f"cached attachments in {facts.config.cni_data_dir} with a live netns"


def check_reservations(facts: Facts) -> list[Finding]:
    network = facts.network
    if network is None:
        return [Finding("reservations", SKIPPED, "no usable network config")]
    try:
        alive, how = live_containers(facts)
    except Exception as exc:  # whatever the runtime client raised: no list, no verdict
        return [Finding("reservations", SKIPPED, f"cannot list the sandboxes: {exc}")]
    reserved = [f for f in footprints(network, facts.config.cni_data_dir) if f.kind == RESERVATION]
    now = time.time()
    leaked = [
        f for f in reserved if f.container_id not in alive and now - f.mtime >= facts.config.grace
    ]
    capacity = _capacity(facts)
    counted = f"{len(reserved)} reservation(s)" + (
        f" ({capacity} in the range)" if capacity else ""
    )
    if not leaked:
        return [ok("reservations", f"{counted}, each owned by a sandbox", f"owners: {how}")]

    def collect() -> str:
        return _collect(facts, alive)

    return [
        problem(
            "reservations",
            f"{len(leaked)} of {counted} belong to no sandbox: leaked addresses run the "
            "range out ('no IP addresses available in range set')",
            evidence=(*(_describe(f) for f in leaked), f"owners: {how}"),
            fix="free them through the chain's GC (doctor --fix), as the agent's GC does "
            "when it is given the runtime's CRI socket (--cri-socket)",
            repair=collect,
        )
    ]


def _collect(facts: Facts, alive: set[str]) -> str:
    """One GC round with the same rules as the agent's: files younger than the grace
    period are kept, DEL runs for cached attachments, then the GC verb."""
    gc = GarbageCollector(
        conf_dir=facts.config.conf_dir,
        bin_dir=facts.config.bin_dir,
        list_sandboxes=lambda: alive,
        gate=Gate(),
        cache_dir=facts.config.cni_data_dir,
        grace=facts.config.grace,
    )
    report = gc.run_once()
    if report.skipped:
        return f"GC skipped: {report.skipped}"
    freed = [item.what for item in report.freed if item.kind == RESERVATION]
    done = f"freed {len(freed)} address(es): {', '.join(freed) or 'none'}"
    return f"{done}; errors: {'; '.join(report.errors)}" if report.errors else done


def _describe(item: Footprint) -> str:
    owner = f"{item.container_id[:12]} {item.ifname}".strip()
    age = time.time() - item.mtime
    return f"{item.what} reserved for {owner} {age:.0f}s ago"


def _capacity(facts: Facts) -> int:
    """Addresses host-local can hand out of the node's podCIDR: all but the network,
    gateway and broadcast addresses (flannel's default range)."""
    cidr = facts.pod_cidr or (facts.subnet_env.subnet if facts.subnet_env else None)
    return max(cidr.num_addresses - 3, 0) if cidr is not None else 0

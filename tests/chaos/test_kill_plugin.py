"""SIGKILL at random points of a plugin call that runs the whole chain in-process (the
installed flannel executable, no agent), KILLS times; the runtime then forgets those pods
(their namespaces go) and runs one GC with the pods that live. Nothing of the killed
pods may stay (reservation, scratch config, masquerade element, veth), no file may be
half-written, and the live pods keep working until their own DEL."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from podnet.netlink import delete_netns
from tests.chaos._figures import Budget, Limit, record
from tests.plugins.flannel._chain import GATEWAY, NETWORK, NOTHING_LEFT, ChainNode
from tests.plugins.flannel.test_kill import Killable, stage_left
from tests.plugins.main._support import ping, with_prev

pytestmark = [pytest.mark.chaos, pytest.mark.root]

KILLS = 200
LIVE = 10  # pods whose ADD runs to the end, before and between the killed ones
SEED = 20261202
BUDGET = 240.0  # seconds for the killed calls; fewer kills if the machine is that slow


def half_written(chain: ChainNode, owners: set[str]) -> list[str]:
    """Files under the final names that a complete write would not have left."""
    bad = []
    for name in chain.ipam_files():
        content = (chain.ipam_dir / NETWORK / name).read_bytes().decode(errors="replace")
        if name.startswith(".tmp-") or content not in owners:
            bad.append(f"ipam {name}: {content!r}")
    for name in chain.scratch_files():
        if name.startswith(".tmp-"):
            bad.append(f"scratch {name}")
            continue
        try:
            json.loads((chain.flannel_dir / name).read_bytes())
        except ValueError:
            bad.append(f"scratch {name}: not JSON")
    return bad


def test_kill_during_in_process_calls_then_gc(
    chain: ChainNode, pod_netns: Callable[[], str]
) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    killable = Killable(chain)
    conf = chain.flannel_conf("1.1.0")
    live = {f"live{i}": pod_netns() for i in range(LIVE)}
    results: dict[str, dict[str, Any] | None] = {}
    timings = []
    for cid, pod in list(live.items())[: LIVE // 2]:
        code, out, elapsed = killable.run("ADD", conf, pod, cid, -1)
        assert code == 0, out
        results[cid] = out
        timings.append(elapsed)
    window = max(timings) * 1.1

    budget = Budget(BUDGET)
    plan = [rng.uniform(0, window) for _ in range(KILLS)]
    lock = threading.Lock()
    killed: dict[str, str] = {}
    stages: Counter[str] = Counter()
    other_codes: list[int] = []
    attempted: list[str] = []

    def one(i: int) -> None:
        if budget.over():
            return
        cid, pod = f"k{i}", pod_netns()
        with lock:
            attempted.append(cid)
        code, _, _ = killable.run("ADD", conf, pod, cid, plan[i])
        stage = stage_left(chain, pod, cid) if code == -9 else ""
        with lock:
            if code == -9:
                killed[cid] = pod
                stages[stage] += 1
            else:
                other_codes.append(code)
        if code != -9:
            delete_netns(pod)  # finished before the kill: the runtime DELs it below

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, range(KILLS)))
    # the rest of the live pods start among the debris
    for cid, pod in list(live.items())[LIVE // 2 :]:
        code, out, _ = killable.run("ADD", conf, pod, cid, -1)
        assert code == 0, out
        results[cid] = out
    finished_killed = [cid for cid in attempted if cid not in killed]

    # The runtime forgets the killed pods: their namespaces go, one GC with the live ones.
    for pod in killed.values():
        delete_netns(pod)
    gc_conf = {
        **conf,
        "cni.dev/valid-attachments": [{"containerID": cid, "ifname": "eth0"} for cid in live],
    }
    gc_code, gc_out, _ = killable.run("GC", gc_conf, next(iter(live.values())), "gc", -1)
    for cid in finished_killed:  # an ADD the kill missed is deleted as a runtime would
        killable.run("DEL", conf, "/nonexistent", cid, -1)

    owners = {f"{cid}\r\neth0" for cid in live}
    leftovers = chain.leftovers(list(live.values()))
    leaked_reservations = [
        n
        for n in leftovers["reservations"]
        if (chain.ipam_dir / NETWORK / n).read_bytes().decode(errors="replace") not in owners
    ]
    leaked_scratch = [n for n in leftovers["scratch"] if n not in live]
    leaked_masq = [v for v in leftovers["masquerade"].values() if v.split("/")[0] not in live]
    unreachable = [cid for cid, pod in live.items() if not ping(pod, GATEWAY)]
    broken = half_written(chain, owners)
    extra_veths = len(leftovers["node veths"]) - LIVE

    for cid, pod in live.items():
        code, out, _ = killable.run("DEL", with_prev(conf, results[cid]), pod, cid, -1)
        assert code == 0, out
    after_del = chain.leftovers(list(live.values()))

    figures = {
        "kills": len(killed),
        "calls_finished_before_the_kill": len(finished_killed),
        "kill_window_ms": round(window * 1000),
        "gc_exit_code": gc_code,
        "leaked_reservations": len(leaked_reservations),
        "leaked_scratch_files": len(leaked_scratch),
        "leaked_masquerade_elements": len(leaked_masq),
        "leaked_veths": max(extra_veths, 0),
        "half_written_files": len(broken),
        "live_pods_unreachable": len(unreachable),
        "left_after_every_del": int(after_del != NOTHING_LEFT),
        "unexpected_exit_codes": len([c for c in other_codes if c != 0]),
    }
    limits = {
        "kills": Limit(least=KILLS // 2),
        "gc_exit_code": Limit(most=0),
        "leaked_reservations": Limit(most=0),
        "leaked_scratch_files": Limit(most=0),
        "leaked_masquerade_elements": Limit(most=0),
        "leaked_veths": Limit(most=0),
        "half_written_files": Limit(most=0),
        "live_pods_unreachable": Limit(most=0),
        "left_after_every_del": Limit(most=0),
        "unexpected_exit_codes": Limit(most=0),
    }
    notes = {
        "killed_adds_left": dict(stages),
        "gc_answer": gc_out,
        "leaks": {
            "reservations": leaked_reservations[:5],
            "scratch": leaked_scratch[:5],
            "masquerade": leaked_masq[:5],
            "half_written": broken[:5],
            "after_del": after_del if after_del != NOTHING_LEFT else {},
        },
        "stopped_early_by_budget": budget.over(),
    }
    regressions = record("kill-plugin", figures, limits, started=started, notes=notes)
    assert not regressions, regressions

"""Make the kernel match the other nodes' leases.

Two ways in, one rule: the wanted entries are the backend's mapping of every current lease.
    - `apply_batch` is the fast path for watch events: it writes the entries of leases that
      were added or changed, and deletes those of leases that left (unless a current lease
      still wants the same key), without reading the tables back.
    - `reconcile` is level-triggered repair, run on start and periodically: it reads the
      agent's entries from the kernel and fixes every difference, re-adding what someone
      deleted and deleting what belongs to no lease. Unlike flannel, which only ever learns
      about removals from events, this also cleans up after nodes that were deleted while
      the agent was not running.
Every change is attempted; failures are collected and reported, not raised, so one broken
entry never keeps the others from being fixed (the next reconcile retries it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from podnet.agent._backend import Backend
from podnet.agent._entries import Entries, Plan, in_order, plan, plan_removal
from podnet.agent._kernel import KernelTables
from podnet.agent._lease import Lease
from podnet.agent._watcher import EventKind, LeaseEvent

log = logging.getLogger("podnet.agent")


@dataclass
class Outcome:
    plan: Plan
    errors: list[str] = field(default_factory=list)

    @property
    def changes(self) -> int:
        p = self.plan
        return sum(
            len(group)
            for group in (
                p.replace_neighbours,
                p.replace_fdb,
                p.replace_routes,
                p.delete_routes,
                p.delete_neighbours,
                p.delete_fdb,
            )
        )


class Reconciler:
    def __init__(self, kernel: KernelTables, backend: Backend) -> None:
        self.kernel = kernel
        self.backend = backend

    def wanted(self, leases: Iterable[Lease]) -> Entries:
        return Entries.union(self.backend.entries_for(lease) for lease in leases)

    def reconcile(self, leases: Iterable[Lease]) -> Outcome:
        present = self.kernel.read(self.backend.owned_devices)
        outcome = Outcome(plan(self.wanted(leases), present))
        self._apply(outcome.plan, outcome.errors)
        return outcome

    def apply_batch(self, batch: Sequence[LeaseEvent], current: Iterable[Lease]) -> Outcome:
        """Apply watch events; `current` is every lease after the batch (the watcher's)."""
        fresh = Entries.union(
            self.backend.entries_for(e.lease) for e in batch if e.kind is EventKind.ADDED
        )
        gone = Entries.union(self.backend.entries_for(old) for old in _replaced_or_removed(batch))
        writes = Plan(
            replace_neighbours=in_order(fresh.neighbours),
            replace_fdb=in_order(fresh.fdb),
            replace_routes=in_order(fresh.routes),
        )
        deletes = plan_removal(gone, self.wanted(current))
        outcome = Outcome(_concat(writes, deletes))
        self._apply(writes, outcome.errors)
        self._apply(deletes, outcome.errors)
        return outcome

    def _apply(self, changes: Plan, errors: list[str]) -> None:
        k = self.kernel
        steps: list[tuple[Callable[[Any], None], Sequence[Any]]] = [
            (k.replace_neighbour, changes.replace_neighbours),
            (k.replace_fdb, changes.replace_fdb),
            (k.replace_route, changes.replace_routes),
            (k.delete_route, changes.delete_routes),
            (k.delete_neighbour, changes.delete_neighbours),
            (k.delete_fdb, changes.delete_fdb),
        ]
        for action, entries in steps:
            for entry in entries:
                try:
                    action(entry)
                except OSError as exc:
                    message = f"{action.__name__} {entry}: {exc}"
                    log.warning("%s", message)
                    errors.append(message)


def _replaced_or_removed(batch: Iterable[LeaseEvent]) -> Iterable[Lease]:
    for event in batch:
        if event.kind is EventKind.REMOVED:
            yield event.lease
        elif event.previous is not None:
            yield event.previous


def _concat(first: Plan, second: Plan) -> Plan:
    return Plan(
        replace_neighbours=first.replace_neighbours + second.replace_neighbours,
        replace_fdb=first.replace_fdb + second.replace_fdb,
        replace_routes=first.replace_routes + second.replace_routes,
        delete_routes=first.delete_routes + second.delete_routes,
        delete_neighbours=first.delete_neighbours + second.delete_neighbours,
        delete_fdb=first.delete_fdb + second.delete_fdb,
    )

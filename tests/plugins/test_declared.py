"""The cache of declared nftables tables a host's state keeps for bridge and portmap."""

from __future__ import annotations

import threading

from podnet.cni import Host, HostState
from podnet.plugins._declared import DeclaredTables


def test_a_declaration_is_recent_until_too_old_changed_or_forgotten() -> None:
    declared = DeclaredTables()
    key = declared.key("podnet-portmap")
    assert not declared.recent(key, 30.0, "v1"), "never declared"
    declared.note(key, "v1")
    assert declared.recent(key, 30.0, "v1")
    assert not declared.recent(key, 0.0, "v1"), "older than the caller's limit"
    assert not declared.recent(key, 30.0, "v2"), "another declaration replaces it"
    declared.note(key, "v2")
    assert not declared.recent(key, 30.0, "v1")
    declared.forget(key)
    assert not declared.recent(key, 30.0, "v2")


def test_keys_name_the_calling_threads_namespace_and_the_table() -> None:
    declared = DeclaredTables()
    here = declared.key("podnet-masq-a")
    other: list[tuple[int, int, str]] = []
    thread = threading.Thread(target=lambda: other.append(declared.key("podnet-masq-a")))
    thread.start()
    thread.join(10)
    assert other == [here], "one namespace, one key"
    assert declared.key("podnet-masq-b") != here


def test_hosts_over_one_state_share_their_declarations() -> None:
    state = HostState()
    key = DeclaredTables.key("podnet-masq-a")
    Host(state).state.get(DeclaredTables).note(key)
    assert Host(state, defers=True).state.get(DeclaredTables).recent(key, 30.0)
    assert not Host().state.get(DeclaredTables).recent(key, 30.0)

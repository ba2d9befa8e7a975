"""nft batches and listings inside a throwaway namespace, through libnftables and
through the `nft` command (used where the library cannot be loaded)."""

from __future__ import annotations

import errno
import subprocess
import threading
from collections.abc import Iterator

import pytest

from podnet.netlink import NftError, _nft, nft_apply, nft_get_element, nft_list, run_in_netns

pytestmark = pytest.mark.root

TABLE = {"family": "inet", "name": "podnet-test"}
SET = {"family": "inet", "table": "podnet-test", "name": "s"}


@pytest.fixture(params=["libnftables", "process"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "process":
        monkeypatch.setattr(_nft, "libnftables", lambda: None)
    else:
        assert _nft.libnftables() is not None, "the nftables package installs the library"
    yield request.param


def make_set(elements: dict[str, str]) -> None:
    """The test table with set `s` holding these addresses (value: comment, or "")."""
    elems = [
        {"elem": {"val": ip, "comment": note}} if note else ip for ip, note in elements.items()
    ]
    nft_apply(
        [
            {"add": {"table": TABLE}},
            {"add": {"set": {**SET, "type": "ipv4_addr"}}},
            {"add": {"element": {**SET, "elem": elems}}},
        ]
    )


def test_apply_list_and_errors(netns_pair: tuple[str, str], backend: str) -> None:
    node, _ = netns_pair

    def scenario() -> None:
        make_set({"10.0.0.1": "a"})
        items = nft_list({"table": TABLE})
        sets = [i["set"] for i in items if "set" in i]
        assert sets[0]["elem"] == [{"elem": {"val": "10.0.0.1", "comment": "a"}}]
        with pytest.raises(NftError) as info:
            nft_apply([{"delete": {"element": {**SET, "elem": ["10.0.0.9"]}}}])
        assert info.value.errno == errno.ENOENT
        with pytest.raises(NftError) as info:
            nft_list({"table": {"family": "inet", "name": "missing"}})
        assert info.value.errno == errno.ENOENT
        nft_apply([])  # nothing to do is fine

    run_in_netns(node, scenario)
    assert (
        run_in_netns(node, lambda: nft_list({"tables": None}))[0]["table"]["name"] == "podnet-test"
    )


def test_a_thread_keeps_one_library_context_for_its_namespace(
    netns_pair: tuple[str, str],
) -> None:
    node, pod = netns_pair
    library = _nft.libnftables()
    assert library is not None

    def context() -> int:
        library.run(b'{"nftables": [{"list": {"tables": null}}]}', "list")
        return int(library._contexts.context.pointer)

    def scenario() -> None:
        first = context()
        assert context() == first, "reused by the next batch"
        nft_apply([{"add": {"table": TABLE}}])
        # in the pod's namespace the thread gets a context there: no table of ours
        assert run_in_netns(pod, lambda: nft_list({"tables": None})) == []
        assert nft_list({"tables": None})[0]["table"]["name"] == "podnet-test"
        seen: list[int] = []
        other = threading.Thread(target=lambda: seen.append(run_in_netns(node, context)))
        other.start()
        other.join()
        assert seen and seen[0] != library._contexts.context.pointer

    run_in_netns(node, scenario)


def test_get_one_element_with_its_comment(netns_pair: tuple[str, str], backend: str) -> None:
    node, _ = netns_pair

    def scenario() -> None:
        make_set({"10.0.0.1": "a/eth0", "10.0.0.2": ""})
        assert 'comment "a/eth0"' in nft_get_element(
            "inet", "podnet-test", "s", "10.0.0.1", what="get"
        )
        assert "comment" not in nft_get_element("inet", "podnet-test", "s", "10.0.0.2", what="get")
        for table, value in (("podnet-test", "10.0.0.9"), ("podnet-absent", "10.0.0.1")):
            with pytest.raises(NftError) as info:
                nft_get_element("inet", table, "s", value, what="get")
            assert info.value.errno == errno.ENOENT

    run_in_netns(node, scenario)


def test_reads_survive_a_ruleset_changing_under_them(
    netns_pair: tuple[str, str], backend: str
) -> None:
    """Pods churning in the namespace change the set while a lookup dumps it; nft then
    fails with "Interrupted system call" (about once in a few hundred lookups here, as
    seen in CI). The lookup is run again instead of failing a pod's DEL."""
    node, _ = netns_pair
    run_in_netns(node, lambda: make_set({f"10.0.0.{i}": f"pod{i}" for i in range(1, 201)}))
    churn = "add element inet podnet-test s { 10.1.0.1 }\n"
    churn += "delete element inet podnet-test s { 10.1.0.1 }\n"
    loop = f"while true; do printf '{churn}' | nft -f -; done"
    writers = [subprocess.Popen(["nsenter", f"--net={node}", "sh", "-c", loop]) for _ in range(2)]
    lookups = 3000 if backend == "libnftables" else 300
    try:

        def lookup_many() -> None:
            for i in range(lookups):
                ip = f"10.0.0.{i % 200 + 1}"
                text = nft_get_element("inet", "podnet-test", "s", ip, what="get")
                assert f'comment "pod{i % 200 + 1}"' in text
                if i % 50 == 0:
                    assert len(nft_list({"table": TABLE})) == 2

        run_in_netns(node, lookup_many)
    finally:
        for writer in writers:
            writer.kill()
            writer.wait()

"""nft batches and listings inside a throwaway namespace."""

from __future__ import annotations

import errno

import pytest

from podnet.netlink import NftError, nft_apply, nft_list, run_in_netns

pytestmark = pytest.mark.root

TABLE = {"family": "inet", "name": "podnet-test"}
SET = {"family": "inet", "table": "podnet-test", "name": "s"}


def test_apply_list_and_errors(netns_pair: tuple[str, str]) -> None:
    node, _ = netns_pair

    def scenario() -> None:
        nft_apply(
            [
                {"add": {"table": TABLE}},
                {"add": {"set": {**SET, "type": "ipv4_addr"}}},
                {
                    "add": {
                        "element": {**SET, "elem": [{"elem": {"val": "10.0.0.1", "comment": "a"}}]}
                    }
                },
            ]
        )
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

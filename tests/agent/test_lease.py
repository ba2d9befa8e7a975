from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest

from podnet.agent import (
    Lease,
    LeaseError,
    VxlanData,
    ipv4_pod_cidr,
    lease_from_node,
    pod_cidrs_by_family,
)

MAC = "02:11:22:33:44:55"
VXLAN = Lease(
    "n1", IPv4Network("10.244.1.0/24"), IPv4Address("192.0.2.10"), "vxlan", VxlanData(1, MAC)
)
HOST_GW = Lease("n2", IPv4Network("10.244.2.0/24"), IPv4Address("192.0.2.11"), "host-gw")


def test_annotations_use_flannels_names_and_formats() -> None:
    assert VXLAN.annotations() == {
        "flannel.alpha.coreos.com/kube-subnet-manager": "true",
        "flannel.alpha.coreos.com/backend-type": "vxlan",
        "flannel.alpha.coreos.com/backend-data": '{"VNI":1,"VtepMAC":"02:11:22:33:44:55"}',
        "flannel.alpha.coreos.com/public-ip": "192.0.2.10",
    }
    assert HOST_GW.annotations()["flannel.alpha.coreos.com/backend-data"] == "null"


@pytest.mark.parametrize("lease", [VXLAN, HOST_GW])
def test_a_node_object_gives_back_the_lease_it_published(lease) -> None:
    read = lease_from_node(lease.node, pod_cidr=str(lease.subnet), annotations=lease.annotations())
    assert read == lease


@pytest.mark.parametrize(
    ("pod_cidr", "pod_cidrs", "expected"),
    [
        ("10.244.1.0/24", (), "10.244.1.0/24"),
        ("10.244.1.0/24", ("fd00::/64", "10.244.7.0/24"), "10.244.7.0/24"),
        ("", ("fd00::/64",), None),
        (None, (), None),
        ("garbage", (), None),
    ],
)
def test_ipv4_pod_cidr(pod_cidr, pod_cidrs, expected) -> None:
    found = ipv4_pod_cidr(pod_cidr, pod_cidrs)
    assert found == (IPv4Network(expected) if expected else None)


def test_a_node_without_podcidr_or_without_published_annotations_has_no_lease() -> None:
    assert lease_from_node("n1", pod_cidr=None, annotations=VXLAN.annotations()) is None
    partial = {k: v for k, v in VXLAN.annotations().items() if "kube-subnet-manager" not in k}
    assert lease_from_node("n1", pod_cidr="10.244.1.0/24", annotations=partial) is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("public-ip", "not-an-ip"),
        ("backend-data", "null"),
        ("backend-data", '{"VNI":1}'),
        ("backend-data", '{"VNI":"1","VtepMAC":"02:11:22:33:44:55"}'),
        ("backend-data", '{"VNI":1,"VtepMAC":"zz"}'),
        ("backend-data", "{"),
    ],
)
def test_malformed_annotations_are_an_error(key, value) -> None:
    annotations = {**VXLAN.annotations(), f"flannel.alpha.coreos.com/{key}": value}
    with pytest.raises(LeaseError):
        lease_from_node("n1", pod_cidr="10.244.1.0/24", annotations=annotations)


def test_vtep_mac_is_normalised_to_lowercase() -> None:
    assert VxlanData.from_json('{"VNI":1,"VtepMAC":"02:AA:BB:CC:DD:EE"}').vtep_mac == (
        "02:aa:bb:cc:dd:ee"
    )


MAC6 = "02:11:22:33:44:66"
DUAL = Lease(
    "n3",
    IPv4Network("10.244.3.0/24"),
    IPv4Address("192.0.2.12"),
    "vxlan",
    VxlanData(1, MAC),
    ipv6_subnet=IPv6Network("fd00:10:244:3::/64"),
    public_ipv6=IPv6Address("fd00:192:0:2::c"),
    backend_v6_data=VxlanData(1, MAC6),
)
V6_ONLY = Lease(
    "n4",
    None,
    None,
    "vxlan",
    ipv6_subnet=IPv6Network("fd00:10:244:4::/64"),
    public_ipv6=IPv6Address("fd00:192:0:2::d"),
    backend_v6_data=VxlanData(1, MAC6),
)
V6_ONLY_HOST_GW = Lease(
    "n5",
    None,
    None,
    "host-gw",
    ipv6_subnet=IPv6Network("fd00:10:244:5::/64"),
    public_ipv6=IPv6Address("fd00:192:0:2::e"),
)


def test_ipv6_annotations_as_flanneld_writes_them() -> None:
    """flannel's kube subnet manager: backend-v6-data and public-ipv6 beside the IPv4 pair;
    an IPv6-only vxlan node writes no IPv4 pair; host-gw always writes backend-data and
    public-ip (flanneld's zero values: null and 0.0.0.0)."""
    prefix = "flannel.alpha.coreos.com/"
    assert DUAL.annotations() == {
        prefix + "kube-subnet-manager": "true",
        prefix + "backend-type": "vxlan",
        prefix + "backend-data": '{"VNI":1,"VtepMAC":"02:11:22:33:44:55"}',
        prefix + "public-ip": "192.0.2.12",
        prefix + "backend-v6-data": '{"VNI":1,"VtepMAC":"02:11:22:33:44:66"}',
        prefix + "public-ipv6": "fd00:192:0:2::c",
    }
    assert V6_ONLY.annotations() == {
        prefix + "kube-subnet-manager": "true",
        prefix + "backend-type": "vxlan",
        prefix + "backend-v6-data": '{"VNI":1,"VtepMAC":"02:11:22:33:44:66"}',
        prefix + "public-ipv6": "fd00:192:0:2::d",
    }
    assert V6_ONLY_HOST_GW.annotations() == {
        prefix + "kube-subnet-manager": "true",
        prefix + "backend-type": "host-gw",
        prefix + "backend-data": "null",
        prefix + "public-ip": "0.0.0.0",
        prefix + "backend-v6-data": "null",
        prefix + "public-ipv6": "fd00:192:0:2::e",
    }


@pytest.mark.parametrize("lease", [DUAL, V6_ONLY, V6_ONLY_HOST_GW])
def test_a_node_object_gives_back_its_ipv6_lease(lease) -> None:
    cidrs = [str(c) for c in (lease.subnet, lease.ipv6_subnet) if c is not None]
    read = lease_from_node(
        lease.node, pod_cidr=None, pod_cidrs=cidrs, annotations=lease.annotations()
    )
    assert read == lease
    assert read is not None and read.key == (lease.subnet or lease.ipv6_subnet)


def test_a_family_the_node_does_not_publish_is_left_out() -> None:
    """A dual-stack podCIDR pair on a node whose agent publishes IPv4 only (flannel without
    EnableIPv6) makes an IPv4 lease; one publishing IPv6 only, an IPv6 lease."""
    both = ["10.244.1.0/24", "fd00:10:244:1::/64"]
    read = lease_from_node("n1", pod_cidr=None, pod_cidrs=both, annotations=VXLAN.annotations())
    assert read == VXLAN
    read = lease_from_node("n4", pod_cidr=None, pod_cidrs=both, annotations=V6_ONLY.annotations())
    assert read is not None and read.subnet is None
    assert read.ipv6_subnet == IPv6Network("fd00:10:244:1::/64")


@pytest.mark.parametrize(
    ("key", "value"),
    [("public-ipv6", "192.0.2.1"), ("backend-v6-data", "null"), ("backend-v6-data", "{")],
)
def test_malformed_ipv6_annotations_are_an_error(key, value) -> None:
    annotations = {**DUAL.annotations(), f"flannel.alpha.coreos.com/{key}": value}
    cidrs = ["10.244.3.0/24", "fd00:10:244:3::/64"]
    with pytest.raises(LeaseError):
        lease_from_node("n3", pod_cidr=None, pod_cidrs=cidrs, annotations=annotations)


def test_pod_cidrs_by_family_takes_the_first_of_each() -> None:
    found = pod_cidrs_by_family(None, ["fd00::/64", "10.244.7.0/24", "fd01::/64", "bad"])
    assert found == (IPv4Network("10.244.7.0/24"), IPv6Network("fd00::/64"))
    assert pod_cidrs_by_family("fd00::/64") == (None, IPv6Network("fd00::/64"))

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from podnet.agent import Lease, LeaseError, VxlanData, ipv4_pod_cidr, lease_from_node

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

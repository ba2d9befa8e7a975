"""podnet doctor on a real lab node: each well-known failure is injected into the node,
doctor names it with its evidence, `--fix` repairs the safe ones and a second run comes
back clean. Doctor runs as users run it (`podnet lab doctor`'s command line, inside the
node's namespace, with the node's own API identity)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podnet.lab import Lab, lab_namespaces

pytestmark = [pytest.mark.root, pytest.mark.slow]

DOCTOR_TIMEOUT = 60.0
SAFE_STATUSES = {"ok", "skipped"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("doctor")
    name = "d" + secrets.token_hex(3)
    netns_dir = tmp / "netns"
    netns_dir.mkdir()
    lab = Lab(name, root=str(tmp / "labs"), netns_dir=str(netns_dir))
    try:
        lab.up(2, progress=lambda _: None)
        lab.pod_run("web", "n1")
        yield lab
    finally:
        lab.down()
        assert lab_namespaces(name, netns_dir=str(netns_dir)) == []


def doctor(lab: Lab, *extra: str, node: str = "n1") -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        lab.doctor_argv(node, "-o", "json", *extra),
        capture_output=True,
        text=True,
        timeout=DOCTOR_TIMEOUT,
        check=False,
    )
    assert done.stderr == "", done.stderr
    return done.returncode, json.loads(done.stdout)


def finding(report: dict[str, Any], check: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [f for f in report["findings"] if f["check"] == check]
    assert len(found) == 1, report
    return found[0]


def in_node(lab: Lab, *argv: str, node: str = "n1") -> None:
    subprocess.run(["nsenter", f"--net={lab.node(node).netns}", *argv], check=True, timeout=10)


def assert_clean(lab: Lab) -> None:
    code, report = doctor(lab)
    wrong = [f for f in report["findings"] if f["status"] not in SAFE_STATUSES]
    assert (code, wrong) == (0, [])


def test_a_healthy_node_is_clean_and_every_check_ran(lab: Lab) -> None:
    code, report = doctor(lab)
    statuses = {f["check"]: f["status"] for f in report["findings"]}
    assert code == 0
    assert statuses == {
        "subnet.env": "ok",
        "cni-config": "ok",
        "plugins": "ok",
        "bridge": "ok",
        "mtu": "ok",
        "peers": "ok",
        "masquerade": "ok",
        "reservations": "ok",
        "agent": "ok",
    }
    assert "10.244." in finding(report, "subnet.env")["message"]


def test_a_missing_subnet_env_is_named_with_its_path(lab: Lab) -> None:
    path = lab.node_dirs("n1").subnet_file
    os.rename(path, path + ".away")
    try:
        code, report = doctor(lab)
    finally:
        os.rename(path + ".away", path)
    found = finding(report, "subnet.env")
    assert code == 1
    assert found["status"] == "error"
    assert path in found["message"] and "missing" in found["message"]
    assert "agent" in found["fix"]
    assert_clean(lab)


def test_a_podcidr_change_the_agent_missed_is_named(lab: Lab) -> None:
    path = lab.node_dirs("n1").subnet_file
    original = Path(path).read_text()
    stale = "\n".join(
        "FLANNEL_SUBNET=10.244.200.1/24" if line.startswith("FLANNEL_SUBNET=") else line
        for line in original.splitlines()
    )
    Path(path).write_text(stale + "\n")
    try:
        code, report = doctor(lab)
    finally:
        Path(path).write_text(original)
    found = finding(report, "subnet.env")
    assert code == 1
    assert "10.244.200.0/24" in found["message"] and "podCIDR changed" in found["message"]


def test_shadowed_and_invalid_network_configs_are_named(lab: Lab) -> None:
    conf_dir = Path(lab.node_dirs("n1").conf_dir)
    ours = sorted(conf_dir.iterdir())[0]
    shutil.copy(ours, conf_dir / "99-old.conflist")
    try:
        code, report = doctor(lab)
        shadowed = finding(report, "cni-config")
        (conf_dir / "00-broken.conf").write_text("{not json")
        broken_code, broken = doctor(lab)
    finally:
        (conf_dir / "99-old.conflist").unlink()
        (conf_dir / "00-broken.conf").unlink(missing_ok=True)
    assert code == 1
    assert shadowed["status"] == "warning"
    assert shadowed["evidence"] == ["ignored: 99-old.conflist"]
    assert ours.name in shadowed["message"]
    assert broken_code == 1
    assert finding(broken, "cni-config")["status"] == "error"
    assert "00-broken.conf" in finding(broken, "cni-config")["message"]
    assert_clean(lab)


def test_a_plugin_missing_from_the_bin_dir_is_named(lab: Lab) -> None:
    bin_dir = Path(lab.node_dirs("n1").bin_dir)
    os.rename(bin_dir / "flannel", bin_dir / "flannel.away")
    try:
        code, report = doctor(lab)
    finally:
        os.rename(bin_dir / "flannel.away", bin_dir / "flannel")
    found = finding(report, "plugins")
    assert code == 1
    assert found["status"] == "error"
    assert any("flannel" in line for line in found["evidence"])
    assert "install-cni" in found["fix"]


def test_a_stale_cni0_address_is_removed_by_fix(lab: Lab) -> None:
    in_node(lab, "ip", "addr", "add", "10.244.77.1/24", "dev", "cni0")
    code, report = doctor(lab)
    found = finding(report, "bridge")
    assert code == 1
    assert found["message"].startswith('"cni0" already has an IP address different from')
    assert found["safeFix"] is True

    fixed_code, fixed = doctor(lab, "--fix")
    assert fixed["repairs"] == [
        {"check": "bridge", "done": "removed 10.244.77.1/24 from cni0", "failed": False}
    ]
    assert fixed_code == 0
    assert_clean(lab)


def test_a_cni0_address_a_running_pod_uses_is_never_removed(lab: Lab) -> None:
    """The node's podCIDR said to be another: cni0's address is then 'stale', but the pod
    `web` routes through it, so doctor offers no automatic fix and --fix leaves it."""
    argv = lab.doctor_argv("n1", "-o", "json", "--fix")
    argv[argv.index("--kubeconfig") : argv.index("--kubeconfig") + 2] = []
    argv += ["--pod-cidr", "10.244.250.0/24"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=DOCTOR_TIMEOUT)
    report = json.loads(done.stdout)
    found = finding(report, "bridge")
    assert found["status"] == "error" and found["safeFix"] is False, found
    web = next(pod for pod in lab.pods() if pod.sandbox.name == "web")
    assert any(line.endswith(f"uses {web.sandbox.ip}/24") for line in found["evidence"]), found
    assert [r["check"] for r in report["repairs"]] == []
    assert_clean(lab)


def test_an_mtu_above_flannel_mtu_on_a_pod_interface_is_named(lab: Lab) -> None:
    ports = subprocess.run(
        ["nsenter", f"--net={lab.node('n1').netns}", "ip", "-j", "link", "show", "master", "cni0"],
        capture_output=True,
        text=True,
        check=True,
    )
    port = json.loads(ports.stdout)[0]
    in_node(lab, "ip", "link", "set", port["ifname"], "mtu", "1500")
    try:
        code, report = doctor(lab)
    finally:
        in_node(lab, "ip", "link", "set", port["ifname"], "mtu", str(port["mtu"]))
    found = finding(report, "mtu")
    assert code == 1
    assert any(f"{port['ifname']} has MTU 1500" in line for line in found["evidence"])


def test_a_leaked_reservation_is_freed_by_fix_and_the_pods_is_kept(lab: Lab) -> None:
    networks = Path(lab.node_dirs("n1").cni_data_dir) / "networks"
    data_dir = next(d for d in networks.iterdir() if d.is_dir())
    kept = {p.name for p in data_dir.iterdir() if p.name.startswith("10.")}
    subnet = lab.node_dirs("n1").subnet_file
    prefix = next(line for line in Path(subnet).read_text().splitlines() if "SUBNET=" in line)
    address = prefix.split("=")[1].rsplit(".", 1)[0] + ".200"  # in n1's podCIDR
    leaked = data_dir / address
    leaked.write_text("f" * 64 + "\neth0")
    os.utime(leaked, (1, 1))  # older than any grace period
    code, report = doctor(lab)
    found = finding(report, "reservations")
    assert code == 1
    assert found["safeFix"] is True
    assert any(
        line.startswith(f"{address} reserved for ffffffffffff") for line in found["evidence"]
    )

    fixed_code, fixed = doctor(lab, "--fix")
    assert [r["check"] for r in fixed["repairs"]] == ["reservations"]
    assert address in fixed["repairs"][0]["done"]
    assert not leaked.exists()
    assert {p.name for p in data_dir.iterdir() if p.name.startswith("10.")} == kept
    assert fixed_code == 0


def test_peer_entries_missing_or_left_behind_are_reprogrammed_by_fix(lab: Lab) -> None:
    """With the agent stopped nothing repairs them behind doctor's back."""
    lab.processes.stop("agent-n1")
    try:
        leases = {n.name: n for n in lab.nodes()}
        n2_cidr = str(leases["n2"].pod_cidrs[0])
        in_node(lab, "ip", "route", "del", n2_cidr)
        in_node(
            lab,
            "bridge",
            "fdb",
            "add",
            "02:00:00:00:00:99",
            "dev",
            "flannel.1",
            "dst",
            "192.0.2.99",
        )
        code, report = doctor(lab)
        found = finding(report, "peers")
        assert code == 1
        assert f"missing: route {n2_cidr} via" in "\n".join(found["evidence"])
        assert (
            "for no node: fdb 02:00:00:00:00:99 dst 192.0.2.99 dev flannel.1" in found["evidence"]
        )
        assert finding(report, "agent")["status"] == "error"

        _, fixed = doctor(lab, "--fix")
        assert finding(fixed, "peers")["status"] == "ok"
        assert finding(fixed, "agent")["status"] == "error"  # no fix starts daemons
    finally:
        lab.restart_agent("n1")
    lab.wait_ready(progress=lambda _: None, timeout=30)
    assert_clean(lab)


def test_lab_doctor_prints_one_line_per_check_and_exits_non_zero_on_a_problem(
    lab: Lab,
) -> None:
    path = lab.node_dirs("n1").subnet_file
    os.rename(path, path + ".away")
    try:
        argv = [a for a in lab.doctor_argv("n1")]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=DOCTOR_TIMEOUT)
    finally:
        os.rename(path + ".away", path)
    lines = done.stdout.splitlines()
    assert done.returncode == 1
    assert lines[0].split() == ["STATUS", "CHECK", "FINDING"]
    assert any(line.startswith("ERROR") and "subnet.env" in line for line in lines)
    assert any(line.strip().startswith("fix: ") for line in lines)
    assert lines[-1].endswith("problem(s) found")

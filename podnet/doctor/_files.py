"""The node's files: subnet.env, the CNI conf dir, the plugins the winning config names."""

from __future__ import annotations

import os

from podnet.cni import CNIError
from podnet.doctor._facts import Facts
from podnet.doctor._finding import WARNING, Finding, ok, problem
from podnet.runtime import CNI, PluginErrors, ProcessExec

PLUGIN_TIMEOUT = 10.0  # a plugin that does not answer VERSION or STATUS in this is broken


def check_subnet_env(facts: Facts) -> list[Finding]:
    path = facts.config.subnet_file
    env = facts.subnet_env
    want, source = facts.pod_cidr, facts.pod_cidr_source
    if env is None:
        if not os.path.exists(path):
            cause = (
                f"the node has no podCIDR yet ({source} is empty): nodeipam assigns it"
                if source and want is None
                else "the agent writes it once it has the node's lease: is it running?"
            )
            return [
                problem(
                    "subnet.env",
                    f"{path} is missing: the flannel plugin fails every pod with "
                    "'failed to load flannel subnet.env'",
                    evidence=(facts.subnet_env_error,),
                    fix=f"start the node agent (podnet agent run) and read its log; {cause}",
                )
            ]
        return [
            problem(
                "subnet.env",
                f"{path} is not usable",
                evidence=(facts.subnet_env_error,),
                fix=f"delete {path} and restart the node agent, which writes it again",
            )
        ]
    subnet = env.subnet
    described = f"FLANNEL_SUBNET={subnet} FLANNEL_MTU={env.mtu} FLANNEL_IPMASQ={env.ipmasq}"
    if want is not None and subnet is not None and subnet != want:
        return [
            problem(
                "subnet.env",
                f"{path} gives the node {subnet} but {source} is {want}: the podCIDR changed "
                "and the agent has not caught up",
                evidence=(described,),
                fix="restart the node agent: it writes subnet.env from the node's podCIDR; "
                "pods started before keep their old addresses until they are recreated",
            )
        ]
    if want is not None:
        return [ok("subnet.env", f"{path} matches {source} {want}", described)]
    return [ok("subnet.env", f"{path} is valid", described)]


def check_cni_config(facts: Facts) -> list[Finding]:
    scan, conf_dir = facts.scan, facts.config.conf_dir
    if scan is None or not scan.files:
        return [
            problem(
                "cni-config",
                f"no network config in {conf_dir}: the runtime reports "
                "NetworkPluginNotReady and starts no pod",
                fix="install one: podnet install-cni (or the agent writes it when it starts)",
            )
        ]
    winner = os.path.basename(scan.files[0])
    if facts.network is None:
        return [
            problem(
                "cni-config",
                f"{winner} is the lexically first file in {conf_dir} and it is invalid: "
                "the runtime uses no other",
                evidence=(facts.network_error,),
                fix=f"repair or remove {scan.files[0]}",
            )
        ]
    findings = []
    shadowed = [os.path.basename(path) for path in scan.files[1:]]
    if shadowed:
        findings.append(
            problem(
                "cni-config",
                f"{len(scan.files)} network configs in {conf_dir}: the runtime uses only "
                f"the lexically first, {facts.network.describe()}",
                evidence=tuple(f"ignored: {name}" for name in shadowed),
                fix=f"remove the files this node should not use, or rename the one it "
                f"should so that it sorts first (now: {winner})",
                status=WARNING,
            )
        )
    else:
        findings.append(
            ok(
                "cni-config",
                f"{facts.network.describe()} is the only network config",
                f"plugins: {' -> '.join(facts.network.plugin_types)}",
            )
        )
    return findings


def check_plugins(facts: Facts) -> list[Finding]:
    """As the runtime would run them: every plugin found and speaking the config's
    version (libcni's ValidateNetworkList), then STATUS (CNI 1.1.0 and later)."""
    network, bin_dir = facts.network, facts.config.bin_dir
    if network is None:
        return []
    cni = CNI((bin_dir,), cache_dir=facts.config.cni_data_dir, exec_=ProcessExec(PLUGIN_TIMEOUT))
    try:
        cni.validate(network)
    except PluginErrors as exc:
        return [
            problem(
                "plugins",
                f"{network.describe()} names plugins that {bin_dir} cannot run",
                evidence=tuple(str(error) for error in exc.errors),
                fix=f"install them into {bin_dir}: podnet install-cni --bin-dir {bin_dir} "
                "(or Debian's containernetworking-plugins for the reference ones)",
            )
        ]
    except CNIError as exc:
        return [problem("plugins", "the plugins cannot be checked", evidence=(str(exc),), fix="")]
    failing = [s for s in cni.status(network) if s.error is not None]
    if failing:
        return [
            problem(
                "plugins",
                "STATUS: a plugin says it cannot add pods now",
                evidence=tuple(f"{s.plugin_type}: {s.error}" for s in failing),
                fix="follow the plugin's message (the checks above usually name the cause)",
            )
        ]
    return [
        ok(
            "plugins",
            f"{', '.join(network.plugin_types)}: in {bin_dir}, version "
            f"{network.cni_version}, STATUS ok",
        )
    ]

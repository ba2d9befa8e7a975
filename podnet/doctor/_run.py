"""Every check in the order a pod meets what they check, and `--fix`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from podnet.doctor._agent import check_agent
from podnet.doctor._config import DoctorConfig
from podnet.doctor._facts import Facts, gather
from podnet.doctor._files import check_cni_config, check_plugins, check_subnet_env
from podnet.doctor._finding import Finding, problem
from podnet.doctor._kernel import check_bridge_address, check_masquerade, check_mtu, check_peers
from podnet.doctor._leaks import check_reservations
from podnet.netlink import Rtnl, open_rtnl

FileCheck = Callable[[Facts], list[Finding]]
KernelCheck = Callable[[Facts, Rtnl], list[Finding]]


@dataclass(frozen=True)
class Repair:
    check: str
    done: str
    failed: bool = False


class Doctor:
    """Checks of the node this process runs on (its network namespace); a context
    manager, since the kernel checks and their repairs share one netlink handle."""

    def __init__(self, config: DoctorConfig) -> None:
        self.config = config
        self._rtnl: Rtnl | None = None

    def __enter__(self) -> Doctor:
        self._rtnl = open_rtnl()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._rtnl is not None:
            self._rtnl.close()
            self._rtnl = None

    def examine(self) -> list[Finding]:
        rtnl = self._rtnl
        if rtnl is None:
            raise RuntimeError("Doctor is used outside its `with` block")
        facts = gather(self.config)
        findings: list[Finding] = []
        if facts.api_error:
            findings.append(problem("api", facts.api_error, fix="check the kubeconfig"))
        file_checks: tuple[FileCheck, ...] = (check_subnet_env, check_cni_config, check_plugins)
        kernel_checks: tuple[KernelCheck, ...] = (check_bridge_address, check_mtu, check_peers)
        late_checks: tuple[FileCheck, ...] = (check_masquerade, check_reservations, check_agent)
        for check in file_checks:
            findings += _guarded(check.__name__, check, facts)
        for kernel_check in kernel_checks:
            findings += _guarded(kernel_check.__name__, kernel_check, facts, rtnl)
        for check in late_checks:
            findings += _guarded(check.__name__, check, facts)
        return findings

    def repair(self, findings: list[Finding]) -> list[Repair]:
        """Apply every safe fix of `findings`; one that fails does not stop the others."""
        done = []
        for finding in findings:
            if finding.repair is None:
                continue
            try:
                done.append(Repair(finding.check, finding.repair()))
            except Exception as exc:  # say what failed, then go on with the rest
                done.append(Repair(finding.check, f"failed: {exc}", failed=True))
        return done


def _guarded(name: str, check: Callable[..., list[Finding]], *args: object) -> list[Finding]:
    """A check that breaks is a finding itself, not the end of the others."""
    try:
        return check(*args)
    except Exception as exc:
        label = name.removeprefix("check_").replace("_", "-")
        return [problem(label, f"the check could not run: {exc}", fix="report it")]

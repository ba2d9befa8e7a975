"""podnet doctor: which of the well-known failures a node has, the evidence, the fix.

The failures that fill flannel's and the CNI plugins' issue trackers, each a check: a
missing or stale subnet.env (a podCIDR that changed), several CNI configs where the
lexically first wins, plugins missing or failing STATUS, a cni0 keeping an old podCIDR's
address, MTU mismatches, leaked host-local reservations, routes/neighbours/FDB entries
for nodes that left or missing for nodes that exist, the masquerade table, the agent.
`Doctor.repair` applies only fixes that cannot cut off a running pod.
"""

from podnet.doctor._config import DEFAULT_GRACE, DoctorConfig
from podnet.doctor._finding import ERROR, OK, SKIPPED, WARNING, Finding
from podnet.doctor._run import Doctor, Repair

__all__ = [
    "DEFAULT_GRACE",
    "ERROR",
    "OK",
    "SKIPPED",
    "WARNING",
    "Doctor",
    "DoctorConfig",
    "Finding",
    "Repair",
]

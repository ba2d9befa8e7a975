"""A Kubernetes API client (lightkube) from a kubeconfig or the in-cluster service
account, one policy for every component that talks to the API (the agent, nodeipam).

What other packages use: `connect`, `CredentialsError`, `REQUEST_SECONDS`,
`SERVICE_ACCOUNT_DIR`.
"""

from podnet.kube._connect import (
    REQUEST_SECONDS,
    SERVICE_ACCOUNT_DIR,
    CredentialsError,
    connect,
)

__all__ = [
    "REQUEST_SECONDS",
    "SERVICE_ACCOUNT_DIR",
    "CredentialsError",
    "connect",
]

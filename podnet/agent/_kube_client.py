"""The agent's Kubernetes API client: podnet.kube's credentials (flanneld's order: a
kubeconfig given on the command line, else the pod's service account, else a clear
error), writing as the agent."""

from __future__ import annotations

from lightkube import Client

from podnet.kube import SERVICE_ACCOUNT_DIR, connect

FIELD_MANAGER = "podnet-agent"


def kube_client(kubeconfig: str | None, service_account: str = SERVICE_ACCOUNT_DIR) -> Client:
    return connect(kubeconfig, field_manager=FIELD_MANAGER, service_account_dir=service_account)

"""A Kubernetes API client for the agent, from flanneld's sources of credentials, in its
order: a kubeconfig file given on the command line, else the pod's service account
(in-cluster: its token and CA, the API server at KUBERNETES_SERVICE_HOST/PORT), else a
clear error. No ~/.kube/config fallback: a DaemonSet pod has none, and picking up a
user's file by accident would run the agent under the wrong identity."""

from __future__ import annotations

import os

import httpx
from lightkube import Client, ConfigError, KubeConfig

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
REQUEST_SECONDS = 10.0  # connect, write and read deadline of every request but a watch's
FIELD_MANAGER = "podnet-agent"


class CredentialsError(Exception):
    """No usable credentials; the message says where they were looked for."""


def kube_config(kubeconfig: str | None, service_account: str = SERVICE_ACCOUNT_DIR) -> KubeConfig:
    if kubeconfig:
        if not os.path.isfile(kubeconfig):
            raise CredentialsError(f"kubeconfig {kubeconfig} does not exist")
        try:
            return KubeConfig.from_file(kubeconfig)
        except (ConfigError, OSError, ValueError, KeyError, TypeError) as exc:
            raise CredentialsError(f"kubeconfig {kubeconfig} is not usable: {exc}") from None
    env = os.environ
    if not (env.get("KUBERNETES_SERVICE_HOST") and env.get("KUBERNETES_SERVICE_PORT")):
        raise CredentialsError(
            "no Kubernetes credentials: pass --kubeconfig, or run in a pod "
            "(KUBERNETES_SERVICE_HOST/PORT and a service account token)"
        )
    try:
        return KubeConfig.from_service_account(service_account)
    except ConfigError as exc:
        raise CredentialsError(f"in-cluster credentials are not usable: {exc}") from None


def kube_client(kubeconfig: str | None, service_account: str = SERVICE_ACCOUNT_DIR) -> Client:
    config = kube_config(kubeconfig, service_account)
    try:
        return Client(
            config,
            timeout=httpx.Timeout(REQUEST_SECONDS),
            field_manager=FIELD_MANAGER,
        )
    except (ConfigError, OSError, ValueError) as exc:
        raise CredentialsError(f"cannot use the cluster's credentials: {exc}") from None

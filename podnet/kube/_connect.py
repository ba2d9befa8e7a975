"""One Kubernetes API client per component, from credentials found as client-go's
components find them: a kubeconfig file given on the command line, else the pod's
service account (in-cluster: its token, CA and namespace, the API server at
KUBERNETES_SERVICE_HOST/PORT, both set, as rest.InClusterConfig wants), else a clear
error. No ~/.kube/config fallback: a DaemonSet or controller pod has none, and picking up
a user's file by accident would run a component under the wrong identity.

Proxy variables of the environment are not followed (lightkube's `trust_env=False`): a
component talks to the one API server its credentials name, never through whatever
HTTP(S)_PROXY the node's shell or image pulls use.
"""

from __future__ import annotations

import os

import httpx
import yaml
from lightkube import Client, ConfigError, KubeConfig

from podnet._tls import install as install_tls_workaround

# A client's connection reset before its TLS handshake must not leave a socket open
# (CPython 3.11; see podnet._tls): every component's API client goes through here.
install_tls_workaround()

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
REQUEST_SECONDS = 10.0  # connect, write and read deadline of every request but a watch's


class CredentialsError(Exception):
    """No usable credentials; the message says where they were looked for."""


def _kube_config(kubeconfig: str | None, service_account_dir: str) -> KubeConfig:
    if kubeconfig:
        if not os.path.isfile(kubeconfig):
            raise CredentialsError(f"kubeconfig {kubeconfig} does not exist")
        try:
            return KubeConfig.from_file(kubeconfig)
        except (ConfigError, OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
            raise CredentialsError(
                f"kubeconfig {kubeconfig} is not usable: {_one_line(exc)}"
            ) from None
    env = os.environ
    if not (env.get("KUBERNETES_SERVICE_HOST") and env.get("KUBERNETES_SERVICE_PORT")):
        raise CredentialsError(
            "no Kubernetes credentials: pass --kubeconfig, or run in a pod "
            "(KUBERNETES_SERVICE_HOST/PORT and a service account token)"
        )
    try:
        return KubeConfig.from_service_account(service_account_dir)
    except (ConfigError, OSError) as exc:
        raise CredentialsError(f"in-cluster credentials are not usable: {_one_line(exc)}") from None


def connect(
    kubeconfig: str | None,
    *,
    field_manager: str,
    service_account_dir: str = SERVICE_ACCOUNT_DIR,
    timeout: float = REQUEST_SECONDS,
) -> Client:
    """A lightkube client from `kubeconfig`, else the in-cluster service account, writing
    as `field_manager`; `timeout` bounds every request but a watch's."""
    config = _kube_config(kubeconfig, service_account_dir)
    try:
        return Client(
            config,
            field_manager=field_manager,
            trust_env=False,
            timeout=httpx.Timeout(timeout),
        )
    except (ConfigError, OSError, ValueError, KeyError) as exc:
        raise CredentialsError(f"cannot use the cluster's credentials: {_one_line(exc)}") from None


def _one_line(exc: Exception) -> str:
    """A parser's message spans lines (where, what, a caret): a CLI prints one."""
    return " ".join(str(exc).split())

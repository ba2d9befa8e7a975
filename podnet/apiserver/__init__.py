"""The Kubernetes API over podnet's store (`podnet apiserver run`): HTTPS with bearer
tokens, the core/v1 and coordination.k8s.io/v1 resources the pod network needs, lists,
watches, patches and Status errors in kube-apiserver's wire formats, so kubectl and the
official clients work against a podnet cluster. podnet.store is its only door to data."""

from podnet.apiserver._auth import (
    CONTROLLER_MANAGER,
    MASTERS,
    NODES_GROUP,
    SCHEDULER,
    Identity,
    TokenFile,
    TokenFileError,
    Tokens,
    write_token_file,
)
from podnet.apiserver._pki import ServingFiles, ensure_serving_certs, write_kubeconfig
from podnet.apiserver._resources import RESOURCES, SYSTEM_NAMESPACES, Resource
from podnet.apiserver._server import APIServer

__all__ = [
    "CONTROLLER_MANAGER",
    "MASTERS",
    "NODES_GROUP",
    "RESOURCES",
    "SCHEDULER",
    "SYSTEM_NAMESPACES",
    "APIServer",
    "Identity",
    "Resource",
    "ServingFiles",
    "TokenFile",
    "TokenFileError",
    "Tokens",
    "ensure_serving_certs",
    "write_kubeconfig",
    "write_token_file",
]

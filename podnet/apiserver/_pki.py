"""The cluster's certificates and client configuration, made with `cryptography`:
a CA, a serving certificate it signs for the addresses the API server listens on, and
kubeconfig files that trust that CA and carry a bearer token.

Private keys are written 0600. A kubeconfig is written as JSON, which kubectl and the
Kubernetes clients read as the YAML it is a subset of.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVING_DAYS = 365


@dataclass(frozen=True)
class ServingFiles:
    ca_cert: str
    cert: str
    key: str


def _write(path: str, data: bytes, mode: int) -> None:
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def ensure_serving_certs(directory: str, hosts: Sequence[str]) -> ServingFiles:
    """ca.crt/ca.key and apiserver.crt/apiserver.key in `directory`; made if absent, and
    the serving certificate made again when it does not name every one of `hosts`."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    files = ServingFiles(
        ca_cert=os.path.join(directory, "ca.crt"),
        cert=os.path.join(directory, "apiserver.crt"),
        key=os.path.join(directory, "apiserver.key"),
    )
    ca_key_path = os.path.join(directory, "ca.key")
    now = datetime.datetime.now(datetime.UTC)
    if not (os.path.exists(files.ca_cert) and os.path.exists(ca_key_path)):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("podnet-ca"))
            .issuer_name(_name("podnet-ca"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write(ca_key_path, _key_pem(ca_key), 0o600)
        _write(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
        for stale in (files.cert, files.key):
            if os.path.exists(stale):
                os.unlink(stale)
    if _names_all(files.cert, hosts) and os.path.exists(files.key):
        return files
    with open(ca_key_path, "rb") as file:
        signing_key = serialization.load_pem_private_key(file.read(), password=None)
    with open(files.ca_cert, "rb") as file:
        ca_cert = x509.load_pem_x509_certificate(file.read())
    if not isinstance(signing_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{ca_key_path}: not the EC key podnet makes")
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(["localhost", "kubernetes", "kubernetes.default", *hosts]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("kube-apiserver"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVING_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(signing_key, hashes.SHA256())
    )
    _write(files.key, _key_pem(key), 0o600)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return files


def _names_all(cert_path: str, hosts: Sequence[str]) -> bool:
    try:
        with open(cert_path, "rb") as file:
            cert = x509.load_pem_x509_certificate(file.read())
    except (OSError, ValueError):
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    present = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    present |= set(san.get_values_for_type(x509.DNSName))
    return all(host in present for host in hosts)


def write_kubeconfig(path: str, *, server: str, ca_cert: str, token: str, user: str) -> None:
    """A kubeconfig with one cluster, user and context, 0600 (it holds a token)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "podnet", "cluster": {"server": server, "certificate-authority": ca_cert}}
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "podnet", "context": {"cluster": "podnet", "user": user}}],
        "current-context": "podnet",
        "preferences": {},
    }
    _write(path, (json.dumps(config, indent=2) + "\n").encode(), 0o600)

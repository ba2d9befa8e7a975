"""Certificates and kubeconfigs."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from cryptography import x509

from podnet.apiserver import ensure_serving_certs, write_kubeconfig


def mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def sans(path: str) -> set[str]:
    cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} | set(
        names.get_values_for_type(x509.DNSName)
    )


def test_serving_certs_are_made_once_and_name_every_host(tmp_path: Path) -> None:
    files = ensure_serving_certs(str(tmp_path / "pki"), ["127.0.0.1", "192.0.2.1"])
    assert {"127.0.0.1", "192.0.2.1", "localhost"} <= sans(files.cert)
    assert mode(files.key) == 0o600 and mode(str(tmp_path / "pki" / "ca.key")) == 0o600
    ca = Path(files.ca_cert).read_bytes()
    cert = Path(files.cert).read_bytes()
    again = ensure_serving_certs(str(tmp_path / "pki"), ["192.0.2.1"])
    assert Path(again.cert).read_bytes() == cert  # nothing new to name: kept
    grown = ensure_serving_certs(str(tmp_path / "pki"), ["192.0.2.1", "node.example"])
    assert "node.example" in sans(grown.cert)
    assert Path(grown.ca_cert).read_bytes() == ca  # same CA, new serving certificate
    issued = x509.load_pem_x509_certificate(Path(grown.cert).read_bytes())
    assert issued.issuer == x509.load_pem_x509_certificate(ca).subject


def test_kubeconfig_holds_the_token_privately(tmp_path: Path) -> None:
    path = str(tmp_path / "admin.kubeconfig")
    write_kubeconfig(
        path, server="https://127.0.0.1:6443", ca_cert="/x/ca.crt", token="t", user="u"
    )
    config = json.loads(Path(path).read_text())
    assert config["current-context"] == "podnet" and config["users"][0]["user"]["token"] == "t"
    assert mode(path) == 0o600

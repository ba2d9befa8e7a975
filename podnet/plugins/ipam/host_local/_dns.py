"""`resolvConf`: the DNS settings host-local returns, read from a resolv.conf file as the
reference's dns.go reads it (nameserver, domain, search, options; comments skipped)."""

from __future__ import annotations

from podnet.cni import DNS, IOFailure


def read_resolv_conf(path: str) -> DNS:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError as exc:
        raise IOFailure(f"open {path}: {exc.strerror}") from None
    return parse_resolv_conf(text)


def parse_resolv_conf(text: str) -> DNS:
    dns = DNS()
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        fields = line.split()
        if len(fields) < 2:
            continue
        keyword, values = fields[0], fields[1:]
        if keyword == "nameserver":
            dns.nameservers.append(values[0])
        elif keyword == "domain":
            dns.domain = values[0]
        elif keyword == "search":
            dns.search.extend(values)
        elif keyword == "options":
            dns.options.extend(values)
    return dns

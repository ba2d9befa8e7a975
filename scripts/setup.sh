#!/usr/bin/env bash
# One-time, idempotent set-up of a fresh Debian machine (run as root by `make`):
# the distribution packages podnet drives or tests against, then a .venv in the repo
# with podnet installed editable. Re-running it does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    iproute2 iputils-ping nftables util-linux python3-venv
    gcc libc6-dev                 # builds the CNI launcher (podnet/plugins/launcher.c) at install
    strace                        # kills plugins at exact syscalls (tests/plugins/flannel/test_kill.py)
    containernetworking-plugins   # the reference plugins, in /usr/lib/cni
    iptables                      # the reference portmap execs it (tests/plugins/portmap, bench)
    etcd-server etcd-client       # the distributed store backend
    containerd runc busybox-static  # the real CRI runtime the e2e tests drive
    graphviz                      # `podnet lab graph` and the demo's picture of the cluster
    jq                            # the walk-through's `kubectl get no n1 -o json | jq .spec.podCIDR`
)
# kubectl tests podnet's API server (tests/apiserver); Debian's package where none is on PATH.
if ! command -v kubectl >/dev/null; then
    APT_PACKAGES+=(kubernetes-client)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian interpreter, named directly: `python3` on PATH may be a slow shell shim.
if [[ ! -x .venv/bin/python ]]; then
    /usr/bin/python3 -m venv .venv
fi
if ! .venv/bin/python -c "import podnet, pyroute2, pytest, hypothesis, importlib.util as u
assert u.find_spec('matplotlib')" 2>/dev/null \
    || [[ pyproject.toml -nt .venv/.installed ]]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,bench]'
    touch .venv/.installed
fi

# podnet: `make demo` and `make test` set the machine up themselves (see scripts/setup.sh).
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: setup test lint unit demo bench e2e chaos clean

setup:
	@scripts/setup.sh

lint: setup
	$(PY) -m ruff check podnet tests bench
	$(PY) -m ruff format --check podnet tests bench
	$(PY) -m mypy
	.venv/bin/lint-imports

# The whole suite. pytest's exit code 5 (no tests collected) fails the run like any other.
test: lint
	$(PY) -m pytest -q

# Pods under a real containerd, driven over CRI as kubelet does (also part of `make test`).
e2e: setup
	$(PY) -m pytest -q -m e2e tests/e2e

# Failure scenarios (kill -9, full disks, dead stores, fuzzed sockets), each bounded in
# time, figures printed and stored in bench/results/chaos.json; a figure over its limit
# fails. Up to 15 minutes; not part of `make test`.
chaos: setup
	timeout --kill-after=30 1200 $(PY) -m pytest -q -s -m chaos tests/chaos

demo: setup
	$(PY) -m podnet.cli.main demo

bench: setup
	$(PY) -m bench.cni
	$(PY) -m bench.trace
	$(PY) -m bench.portmap

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache

# The two commands of the README: `make demo` and `make test`.
# Both bootstrap what they need first (Debian packages, .venv/), idempotently.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: bootstrap demo test lint sanity unit integration molecule bench sandbox-up sandbox-down sandbox-status sandbox-reset build clean

bootstrap:
	@scripts/bootstrap.sh

## The main job on the local sandbox: weekly database maintenance.
demo: bootstrap
	@scripts/demo.sh

## Every test: ruff, ansible-lint, ansible-test sanity, unit, integration, Molecule.
test: bootstrap
	@scripts/test.sh

lint: bootstrap
	@scripts/test.sh lint

sanity: bootstrap
	@scripts/test.sh sanity

unit: bootstrap
	@scripts/test.sh unit

integration: bootstrap
	@scripts/test.sh integration

molecule: bootstrap
	@scripts/test.sh molecule

bench: bootstrap
	@bench/run_all.sh

## The local reference stack: the guide's containers, nginx with a Pebble certificate, S3.
sandbox-up: bootstrap
	@$(PY) sandbox/stackctl up sandbox

sandbox-down:
	@$(PY) sandbox/stackctl down

sandbox-status:
	@$(PY) sandbox/stackctl status

## Fresh data: the stack down, its state (databases, certificates, buckets) removed, up again.
sandbox-reset: bootstrap
	@$(PY) sandbox/stackctl down
	@rm -rf "$$(readlink -f sandbox/state)"/* && echo "sandbox: state removed"
	@$(PY) sandbox/stackctl up sandbox

## The collection tarball, as Galaxy would get it.
build: bootstrap
	@mkdir -p build && $(VENV)/bin/ansible-galaxy collection build --force --output-path build .

clean:
	rm -rf build tests/output .pytest_cache .ruff_cache

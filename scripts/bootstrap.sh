#!/usr/bin/env bash
# Makes this machine ready to run the collection and its tests, idempotently:
# Debian packages, the venv at .venv/ from requirements-dev.lock, the checkout
# linked as collections/ansible_collections/webstack/ops, and ansible-test's
# get-pip stand-in. A second run on a ready machine takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

# Servers the tests start themselves, the tools the modules wrap (python3-apt: ansible.builtin.apt), and the browser that
# screenshots the maintenance report.
DEBIAN_PACKAGES=(
  postgresql postgresql-contrib redis-server nginx logrotate certbot pebble
  docker.io debootstrap zstd gzip openssl curl iproute2 openssh-server
  python3-venv python3-apt rsync git make
  chromium
)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  # Packages must not start their services (the tests start their own servers): a policy-rc.d
  # that answers 101 tells invoke-rc.d not to, unless the machine already has one.
  policy=/usr/sbin/policy-rc.d
  own_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
    "${sudo_cmd[@]}" chmod 0755 "$policy"
    own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" || status=$?
  [ -z "$own_policy" ] || "${sudo_cmd[@]}" rm -f "$policy"
  [ -z "${status:-}" ] || exit "$status"
fi

# The venv: rebuilt only when requirements-dev.lock changes.
PYTHON=${PYTHON:-python3}
lock_sum=$(sha256sum requirements-dev.lock | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.lock-sha256 2>/dev/null)" != "$lock_sum" ]; then
  echo "bootstrap: installing the venv at .venv/ (first time takes a few minutes)"
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.lock
  echo "$lock_sum" > .venv/.lock-sha256
fi

# Run from the checkout as webstack.ops (ansible.cfg points collections_path here).
mkdir -p collections/ansible_collections/webstack
ln -sfn ../../.. collections/ansible_collections/webstack/ops

# ansible-test downloads get-pip.py from a host that is unreachable here.
pip_version=$(grep -oP "pip='\K[0-9.]+" .venv/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -n1)
mkdir -p ~/.ansible/test/cache
install -m 0644 scripts/ansible_test_get_pip.py ~/.ansible/test/cache/"get_pip_${pip_version//./_}.py"

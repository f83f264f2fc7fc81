#!/usr/bin/env bash
# `make demo`: the main job, playbooks/weekly.yml, against the local sandbox.
# Brings the sandbox up (or reuses it): the guide's containers, nginx with TLS,
# S3; fills the guide's tables on first use,
# simulates a week of traffic so there is work to do, then runs the playbook.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"

python sandbox/stackctl up sandbox
python sandbox/seed.py
ansible-playbook playbooks/weekly.yml -i inventories/sandbox "$@"
ansible-playbook playbooks/backup.yml -i inventories/sandbox "$@"

cat <<'MSG'

Done: playbooks/weekly.yml (VACUUM ANALYZE where needed, the Django cache cleared) and playbooks/backup.yml (pg_dump in
postgres_db streamed into the sandbox's S3) ran against the sandbox (inventories/sandbox).
  verify the backup: .venv/bin/ansible-playbook playbooks/monthly.yml
  again, dry run:   .venv/bin/ansible-playbook playbooks/weekly.yml --check
  sandbox details:  make sandbox-status
  stop the sandbox: make sandbox-down
MSG

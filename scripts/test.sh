#!/usr/bin/env bash
# The whole test suite, or one stage of it: lint | sanity | unit | integration | molecule.
# Lint and sanity run beside one pytest run over unit, integration and Molecule tests, so pytest's summary
# line counts them all.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
stage=${1:-all}

step() { printf '\n=== %s\n' "$*"; }

lint() {
  step "ruff"
  ruff check .
  step "ansible-lint (production profile)"
  ansible-lint --profile production
}

sanity() {
  # ansible-test needs the collection under ansible_collections/<ns>/<name>/:
  # test a copy of the files git knows (tracked, or new and not ignored),
  # outside this checkout so that ansible-test does not read our .gitignore.
  local dest=${XDG_CACHE_HOME:-$HOME/.cache}/webstack-ops/sanity/ansible_collections/webstack/ops
  step "ansible-test sanity (all tests) in $dest"
  rm -rf "$dest" && mkdir -p "$dest"
  git ls-files -z --cached --others --exclude-standard | rsync -a --from0 --files-from=- . "$dest/"
  rm -rf "$dest/tests/output"
  (cd "$dest" && ansible-test sanity --venv --python 3.11 --color no)
}

run_pytest() {
  step "pytest $*"
  # pytest exits 5 when it collected no test: that fails this script too.
  python -m pytest --durations=25 "$@"
}

case "$stage" in
  lint) lint ;;
  sanity) sanity ;;
  unit) run_pytest tests/unit ;;
  integration) run_pytest tests/integration -m "not molecule" ;;
  molecule) run_pytest tests/integration -m molecule ;;
  all)
    # ruff, ansible-lint and ansible-test sanity (about two minutes, mostly one core) run beside pytest, whose
    # servers leave a core idle much of the time; their output follows pytest's, and any failure fails the run.
    checks_log=$(mktemp)
    (lint && sanity) > "$checks_log" 2>&1 &
    checks=$!
    pytest_status=0
    run_pytest tests/unit tests/integration || pytest_status=$?
    checks_status=0
    wait "$checks" || checks_status=$?
    cat "$checks_log" && rm -f "$checks_log"
    if ((checks_status)); then echo "lint or sanity failed (exit $checks_status)" >&2; fi
    if ((pytest_status)); then echo "pytest failed (exit $pytest_status)" >&2; fi
    ((checks_status == 0 && pytest_status == 0))
    ;;
  *) echo "usage: $0 [lint|sanity|unit|integration|molecule]" >&2; exit 2 ;;
esac

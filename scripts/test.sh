#!/usr/bin/env bash
# The whole test suite, or one stage of it: lint | sanity | unit | integration | molecule.
# Lint and sanity run first (fast failures); the last step is one pytest run
# over unit, integration and Molecule tests, so its summary line counts them all.
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
    lint
    sanity
    run_pytest tests/unit tests/integration
    ;;
  *) echo "usage: $0 [lint|sanity|unit|integration|molecule]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Every benchmark, one after the other (`make bench`). Each starts and stops its own servers.
# Figures go to bench/RESULTS.md (set BENCH_RECORD=0 to only print them) and bench/out/*.json.
# Extra arguments are passed to every benchmark, e.g. `bench/run_all.sh --repeat 5`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${PYTHON:-}" ]]; then
  py=$PYTHON
elif [[ -x .venv/bin/python ]]; then
  py=.venv/bin/python
else
  py=python3
fi
record=()
[[ "${BENCH_RECORD:-1}" == 1 ]] && record=(--record)

benchmarks=(
  bench/bench_datagen.py
  bench/bench_pg_maintenance.py
  bench/bench_backup.py
  bench/bench_retention.py
  bench/bench_daily.py
)

status=0
for bench in "${benchmarks[@]}"; do
  printf '\n=== %s\n' "$bench"
  "$py" "$bench" "${record[@]}" "$@" || { echo "FAILED: $bench" >&2; status=1; }
done
exit $status

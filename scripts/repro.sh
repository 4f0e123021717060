#!/usr/bin/env bash
# The whole reproduction study, its students run in parallel as a sweep:
#   1. the teacher, trained once (scripts/repro-teacher.rhai);
#   2. the sweep scripts/sweeps/repro.yaml: all 40 students (8 settings x 5 seeds), --jobs N at
#      a time (default: the number of cores), each loading that teacher;
#   3. the three report scripts (scripts/repro-*.rhai --set sweep=DIR), each putting its section
#      into docs/results/reproduction.md from the sweep's run records.
#   scripts/repro.sh                # Fashion-MNIST (needs Debian's dataset-fashion-mnist)
#   scripts/repro.sh quick          # the same on the bundled digits, into target/repro-quick.md
#   scripts/repro.sh [quick] DIR    # into DIR (default runs/repro-<time>); rerun with the same
#                                   # DIR after an interruption: finished work is kept
#   JOBS=1 scripts/repro.sh         # one student at a time
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
retort=target/release/retort
sets=(); report=docs/results/reproduction.md; suffix=""
if [ "${1:-}" = quick ]; then
    sets=(--set quick=true); report=target/repro-quick.md; suffix="-quick"; shift
fi
dir=${1:-runs/repro-$(date -u +%Y%m%d-%H%M%S)$suffix}
jobs=${JOBS:-$(nproc)}
start=$(date +%s)
if [ ! -f "$dir/teacher/teacher.safetensors" ]; then
    rm -rf "$dir/teacher"
    "$retort" run scripts/repro-teacher.rhai --quiet "${sets[@]}" --out "$dir/teacher"
fi
"$retort" sweep scripts/sweeps/repro.yaml --jobs "$jobs" "${sets[@]}" --set "teacher=$dir/teacher/teacher.safetensors" --out "$dir/sweep"
for study in accuracy regularization filtering; do
    rm -rf "$dir/$study"
    "$retort" run "scripts/repro-$study.rhai" --quiet "${sets[@]}" --set "sweep=$dir/sweep" --out "$dir/$study" --report "$report"
done
echo "report: $report; runs in $dir; wall time $(( $(date +%s) - start )) s with --jobs $jobs on $(nproc) cores"

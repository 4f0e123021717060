#!/usr/bin/env bash
# The whole reproduction study, its students run in parallel as sweeps:
#   1. the teacher, trained once (scripts/repro-teacher.rhai);
#   2. per testbed (cnn: a narrower CNN of the teacher's family, the main one; mlp: the first
#      study's MLP student), the sweep scripts/sweeps/repro-<testbed>.yaml: 40 students (8 settings x 5
#      seeds), --jobs N at a time (default: the number of cores), each loading that teacher;
#   3. per testbed, the three report scripts (scripts/repro-*.rhai --set sweep=DIR), each putting
#      its section into docs/results/reproduction.md from the sweep's run records.
#   scripts/repro.sh                # Fashion-MNIST (needs Debian's dataset-fashion-mnist)
#   scripts/repro.sh quick          # the same on the bundled digits, into target/repro-quick.md
#   scripts/repro.sh [quick] DIR    # into DIR (default runs/repro-<time>); rerun with the same
#                                   # DIR after an interruption: finished work is kept
#   JOBS=1 scripts/repro.sh         # one student at a time
#   TESTBEDS=cnn scripts/repro.sh   # one testbed only
# benches/crosscheck/ runs the same sweeps in PyTorch (docs/results/crosscheck.md).
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
# a whole study writes the report afresh (sections of another layout would stay otherwise)
[ -z "${TESTBEDS:-}" ] && rm -f "$report"
if [ ! -f "$dir/teacher/teacher.safetensors" ]; then
    rm -rf "$dir/teacher"
    "$retort" run scripts/repro-teacher.rhai --quiet "${sets[@]}" --out "$dir/teacher"
fi
for testbed in ${TESTBEDS:-cnn mlp}; do
    "$retort" sweep "scripts/sweeps/repro-$testbed.yaml" --jobs "$jobs" "${sets[@]}" --set "testbed=$testbed" \
        --set "teacher=$dir/teacher/teacher.safetensors" --out "$dir/sweep-$testbed"
    echo "$testbed: $(( $(date +%s) - start )) s so far"
done
for testbed in ${TESTBEDS:-cnn mlp}; do
    for study in accuracy regularization filtering; do
        rm -rf "$dir/$testbed-$study"
        "$retort" run "scripts/repro-$study.rhai" --quiet "${sets[@]}" --set "testbed=$testbed" --set "sweep=$dir/sweep-$testbed" \
            --out "$dir/$testbed-$study" --report "$report" --section "$testbed-$study"
    done
done
echo "report: $report; runs in $dir; wall time $(( $(date +%s) - start )) s with --jobs $jobs on $(nproc) cores"

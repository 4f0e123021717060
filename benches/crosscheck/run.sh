#!/usr/bin/env bash
# The PyTorch cross-check of the reproduction study: both testbeds' sweeps (scripts/sweeps/repro.yaml)
# run in PyTorch, then compared with a retort study's sweeps into docs/results/crosscheck.md.
#   benches/crosscheck/run.sh PYTHON RETORT_STUDY_DIR [TORCH_DIR]
# PYTHON: a venv's python with benches/crosscheck/requirements.txt; RETORT_STUDY_DIR: the folder
# scripts/repro.sh wrote (its sweep-cnn/ and sweep-mlp/); TORCH_DIR default target/crosscheck/repro.
# Reruns skip the points already in TORCH_DIR/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/../.."
python=$1; study=$2; out=${3:-target/crosscheck/repro}
report=docs/results/crosscheck.md
rm -f "$report"
for testbed in cnn mlp; do
    "$python" benches/crosscheck/crosscheck.py run scripts/sweeps/repro.yaml --out "$out" --testbed "$testbed"
done
status=0
for testbed in cnn mlp; do
    case $testbed in
        cnn) title="CNN student (channels [4, 8]), the main testbed"
             setup="The student is retort's cnn with channels [4, 8] (the teacher's family: conv 3x3, batch norm, ReLU, max pool per width).";;
        mlp) title="MLP student (16 hidden units): when KD does not help this student"
             setup="The first study's student: an MLP with 16 hidden units.";;
    esac
    setup="$setup Fashion-MNIST; teacher cnn [16, 32] (15 epochs, SGD 0.05, cosine; each framework trains its own, seed 1000); every student 20 epochs, batch 128, SGD lr 0.01, momentum 0.9, weight decay 5e-4, cosine; T and alpha as set (alpha 2.25). Settings and seeds from scripts/sweeps/repro.yaml."
    "$python" benches/crosscheck/crosscheck.py compare --retort "$study/sweep-$testbed" --torch "$out" --testbed "$testbed" \
        --baseline "method=ce" --title "$title" --setup "$setup" --section "$testbed" --report "$report" > /dev/null || status=1
done
echo "wrote $report"
exit $status

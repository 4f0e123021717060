#!/usr/bin/env bash
# The PyTorch cross-check of the reproduction study: both testbeds' sweeps
# (scripts/sweeps/repro-cnn.yaml, repro-mlp.yaml) run in PyTorch, each framework with the teacher
# it trained, then the MLP testbed again in PyTorch with retort's teacher (its safetensors
# loaded), all compared with a retort study's sweeps into docs/results/crosscheck.md, with the
# PyTorch measurements that chose the CNN testbed.
#   benches/crosscheck/run.sh PYTHON RETORT_STUDY_DIR [TORCH_DIR]
# PYTHON: a venv's python with benches/crosscheck/requirements.txt; RETORT_STUDY_DIR: the folder
# scripts/repro.sh wrote (teacher/, sweep-cnn/, sweep-mlp/); TORCH_DIR default target/crosscheck.
# Reruns skip the points already in TORCH_DIR's results.jsonl files. The candidate testbed
# cnn4x8 (ce and KD at T = 2 and 4) is run by hand:
#   PYTHON benches/crosscheck/crosscheck.py run scripts/sweeps/repro-cnn.yaml --out TORCH_DIR/repro \
#       --testbed cnn4x8 --only method=ce --only method=kd,temperature=2.0 --only method=kd,temperature=4.0
set -euo pipefail
cd "$(dirname "$0")/../.."
python=$1; study=$2; out=${3:-target/crosscheck}
report=docs/results/crosscheck.md
rm -f "$report"
for testbed in cnn mlp; do
    "$python" benches/crosscheck/crosscheck.py run "scripts/sweeps/repro-$testbed.yaml" --out "$out/repro" --testbed "$testbed"
done
"$python" benches/crosscheck/crosscheck.py run scripts/sweeps/repro-mlp.yaml --out "$out/repro-shared" --testbed mlp \
    --teacher "$study/teacher/teacher.safetensors"
common="Fashion-MNIST; teacher cnn [16, 32] (15 epochs, SGD 0.05, cosine, seed 1000); every student 20 epochs, batch 128, SGD lr 0.01, momentum 0.9, weight decay 5e-4, cosine; alpha 2.25."
status=0
compare() {  # section, testbed, torch folder, title, setup, what explains a disagreement
    "$python" benches/crosscheck/crosscheck.py compare --retort "$study/sweep-$2" --torch "$3" --testbed "$2" --baseline "method=ce" \
        --title "$4" --setup "$5 $common Settings and seeds from scripts/sweeps/repro-$2.yaml." --after "${6:-}" \
        --section "$1" --report "$report" > /dev/null || status=1
}
compare cnn cnn "$out/repro" "CNN student (channels [2, 4], T = 2), the main testbed" \
    "The student is retort's cnn with channels [2, 4] (the teacher's family: conv 3x3, batch norm, ReLU, max pool per width). Each framework trains its own teacher."
compare mlp mlp "$out/repro" "MLP student (16 hidden units, T = 4): when KD does not help" \
    "The first study's student: an MLP with 16 hidden units. Each framework trains its own teacher (PyTorch's reached 91.21% test accuracy, retort's 90.64%)." \
    "Where they disagree: WSL's mean, and the paired gains of WSL and the filtered KD runs over the student alone. The teachers differ (91.21% against 90.64%), and WSL's weights and the filters read the teacher's per-sample cross-entropy: with retort's teacher loaded into PyTorch (next section) every method's mean agrees. The paired rows share one baseline, the student alone, which is 0.19 points higher in retort (within two standard errors by itself): that one offset moves every paired row the same way, so their disagreements are not independent."
compare mlp-shared mlp "$out/repro-shared" "MLP student again, both frameworks distilling from retort's teacher" \
    "As above, but PyTorch's students distill from retort's teacher (its safetensors loaded into the PyTorch model: 90.64% test accuracy in both), so that only the students' training differs." \
    "Every method's mean agrees. The paired rows that do not all subtract the same student-alone runs, 0.19 points higher in retort than in PyTorch (t = 1.25, within two standard errors): the gains over the student alone at T = 4 come out 0.2 to 0.4 points lower in retort than in PyTorch. The two agree on the sign of every paired gain but two, both near zero: dropping regularization samples (retort -0.14, PyTorch +0.17) and WSL (retort -0.35, PyTorch +0.04)."
"$python" benches/crosscheck/crosscheck.py choice --torch "$out/repro" --report "$report" > /dev/null
echo "wrote $report"
exit $status

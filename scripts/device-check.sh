#!/usr/bin/env bash
# On the GPU machine, from the repository root (or any folder holding the carried binary):
#   scripts/device-check.sh [RETORT_BINARY]      (default: target/cuda/release/retort)
# The binary is built elsewhere with `--features cuda` (docs/cuda.md). This script finds the
# CUDA libraries (system CUDA 13.0 first, then the Python environment's nvidia/*/lib), gives
# dfdx's run-time-compiled kernels the include path they were built with, and runs the checks.
# Its log goes to $OUT/device-check.log (or ./device-check.log). Exit status: 0 when all pass.
set -uo pipefail
bin=$(realpath "${1:-target/cuda/release/retort}")
log=${OUT:-.}/device-check.log
exec > >(tee "$log") 2>&1
started=$(date +%s)

libdirs=()
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda/lib; do
    [ -d "$d" ] && libdirs+=("$d")
done
for site in $(python3 -c 'import site, sys; print(" ".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null); do
    for d in "$site"/nvidia/*/lib; do
        [ -d "$d" ] && libdirs+=("$d")
    done
done
LD_LIBRARY_PATH="$(IFS=:; echo "${libdirs[*]:-}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH

# dfdx compiles a few kernels (concat, stack, non-contiguous reshape, dtype casts) at run time
# with NVRTC and #includes from the CUDA include folder of the build machine: provide that path.
baked=$(strings "$bin" | grep -o '/[^ "]*/nvidia/cu13/include' | head -1 || true)
if [ -n "$baked" ] && [ ! -e "$baked" ] && [ -d /usr/local/cuda/include ]; then
    mkdir -p "$(dirname "$baked")" && ln -s /usr/local/cuda/include "$baked" && echo "linked $baked -> /usr/local/cuda/include"
fi

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv || true
echo "library folders: $LD_LIBRARY_PATH"
ldd "$bin" | grep -E 'cuda|cublas|nvrtc' || true
failed=0

echo "== 1. agreement: every op and layer on CUDA against the CPU reference"
timeout 240 "$bin" device cuda --check || failed=1

echo "== 2. training on CUDA: a cnn on digits, 10 epochs, against the same run on the CPU"
timeout 240 "$bin" device cuda --train || failed=1

echo "== 2b. a distillation script (scripts/03-distill-wsl.rhai: fit, then WSL distill) on CUDA and on the CPU"
here=$(cd "$(dirname "$0")/.." && pwd)
cpu_out=$(cd "$here" && timeout 120 "$bin" run scripts/03-distill-wsl.rhai --no-record --quiet --device cpu 2>&1) || failed=1
cuda_out=$(cd "$here" && timeout 120 "$bin" run scripts/03-distill-wsl.rhai --no-record --quiet --device cuda 2>&1) || failed=1
echo "$cpu_out" | sed 's/^/cpu:  /'
echo "$cuda_out" | sed 's/^/cuda: /'
cpu_acc=$(echo "$cpu_out" | sed -n 's/^student: //p')
cuda_acc=$(echo "$cuda_out" | sed -n 's/^student: //p')
if [ -z "$cpu_acc" ] || [ -z "$cuda_acc" ] || ! awk -v a="$cpu_acc" -v b="$cuda_acc" 'BEGIN { d = a - b; exit !(d < 0.01 && d > -0.01) }'; then
    echo "the CUDA student ($cuda_acc) is not within 1 point of the CPU student ($cpu_acc)"
    failed=1
fi

echo "== 3. resnet8x4 (CIFAR-100) SGD step at batch 128: retort on CUDA, then PyTorch eager on the same GPU"
timeout 120 "$bin" device cuda --bench 128 || failed=1
if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
    timeout 120 python3 "$here/benches/torch_baseline.py" --device cuda --reps 21 || echo "PyTorch baseline failed"
else
    echo "no PyTorch with CUDA on python3: no baseline"
fi

echo "== done in $(( $(date +%s) - started )) s; $( [ $failed = 0 ] && echo PASSED || echo 'NOT PASSED (see above)')"
exit $failed

#!/usr/bin/env bash
# The CUDA 13.0 pieces that `cargo build --features cuda` needs, from pinned Python wheels, in
# .cuda-toolchain/ (ignored by git). Works on a machine without a GPU: it also makes a link stub
# for libcuda (the wheels ship none) and a stand-in nvidia-smi for dfdx's build script.
# Prints the environment to build with:
#   eval "$(scripts/cuda-toolchain.sh)" && cargo build --release --features cuda
# Pinned to 13.0: driver 580 runs PTX up to version 9.0, which nvcc 13.0.88 emits.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.cuda-toolchain"
cuda="$dir/nvidia/cu13"
wheels=(
    nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-cccl==13.0.85
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-nvrtc==13.0.88 nvidia-cublas==13.0.2.14
)
if [ ! -f "$dir/ready" ]; then
    rm -rf "$dir"
    mkdir -p "$dir/wheels" "$dir/bin"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --dest "$dir/wheels" "${wheels[@]}" >&2
    for w in "$dir"/wheels/*.whl; do
        python3 -m zipfile -e "$w" "$dir" >&2
    done
    chmod +x "$cuda"/bin/* "$cuda"/nvvm/bin/* 2>/dev/null || true
    # link-time names for what cudarc links (-lcublas -lcublasLt -lnvrtc)
    for l in cublas cublasLt nvrtc; do
        ln -sf "lib$l.so.13" "$cuda/lib/lib$l.so"
    done
    # libcuda link stub: every cu* entry point of this cuda.h fails with
    # CUDA_ERROR_STUB_LIBRARY (34), except the two error-text lookups, which must succeed.
    mkdir -p "$cuda/lib/stubs"
    gcc -E -P -I"$cuda/include" -x c "$cuda/include/cuda.h" | python3 -c '
import re, sys
names = sorted(set(re.findall(r"\bCUresult\s+(cu[A-Za-z0-9_]+)\s*\(", sys.stdin.read())))
print("typedef int CUresult;")
print("CUresult cuGetErrorString(int e, const char **s) { *s = \"no CUDA driver (retort was started with the link stub libcuda)\"; return 0; }")
print("CUresult cuGetErrorName(int e, const char **s) { *s = \"CUDA_ERROR_STUB_LIBRARY\"; return 0; }")
for n in names:
    if n not in ("cuGetErrorString", "cuGetErrorName"):
        print(f"CUresult {n}(void) {{ return 34; }}")
' > "$dir/cuda_stub.c"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$cuda/lib/stubs/libcuda.so.1" "$dir/cuda_stub.c"
    ln -sf libcuda.so.1 "$cuda/lib/stubs/libcuda.so"
    # dfdx's build script asks nvidia-smi for the compute capability (H100: 9.0)
    printf '#!/bin/sh\necho compute_cap\necho 9.0\n' > "$dir/bin/nvidia-smi"
    chmod +x "$dir/bin/nvidia-smi"
    "$cuda/bin/nvcc" --version >&2
    touch "$dir/ready"
fi
cat <<ENV
export CUDA_ROOT="$cuda" CUDA_PATH="$cuda" CUDA_COMPUTE_CAP=90
export PATH="$cuda/bin:$dir/bin:\$PATH"
export LIBRARY_PATH="$cuda/lib:$cuda/lib/stubs\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
export LD_LIBRARY_PATH="$cuda/lib:$cuda/lib/stubs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
ENV

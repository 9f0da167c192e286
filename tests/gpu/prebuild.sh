#!/usr/bin/env bash
# Builds the GPU tests and benchmarks on a machine without a GPU (nvcc from the CUDA wheels of
# scripts/install-cuda-wheels.sh, sm_90) and copies the stripped binaries into one folder, so a
# GPU host spends its time running them, not compiling (nvcc of the collective kernels takes
# minutes of device time). The binaries link the CUDA runtime statically and reach the driver at
# run time; they need the host's libcrypto.so.3 (OpenSSL 3) there.
#
# Usage: tests/gpu/prebuild.sh [OUT_DIR]      (default: .gpubin in the repository; git ignores
#                                              it when .git/info/exclude lists /.gpubin/)
# Then, on the GPU host (device tool: carry [".gpubin"]):
#   KCCL_GPU_PREBUILT=.gpubin tests/gpu/run_gpu_coll.sh          collectives, kccl-bench vs NCCL
#   .gpubin/test_gpu_transport 4; .gpubin/bench_gpu_transport 4  transports
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${1:-${ROOT}/.gpubin}"
BUILD="${ROOT}/build-gpu"
NVCC="$("${ROOT}/scripts/install-cuda-wheels.sh" | tail -1)"
cmake -S "${ROOT}" -B "${BUILD}" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKCCL_WERROR=OFF \
    -DKCCL_WITH_CUDA=ON -DCMAKE_CUDA_COMPILER="${NVCC}" -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DKCCL_BUILD_TESTS=OFF -DKCCL_BUILD_GPU_TESTS=ON -DKCCL_BUILD_KUBE=OFF -DKCCL_BUILD_BENCH=ON >/dev/null
cmake --build "${BUILD}" --target test_gpu_coll test_gpu_coll_bench test_gpu_transport \
    bench_gpu_transport kccl-bench kccl-run
mkdir -p "${OUT}"
BINS=(test_gpu_coll test_gpu_coll_bench test_gpu_transport bench_gpu_transport kccl-bench kccl-run)
cp "${BUILD}"/tests/gpu/{test_gpu_coll,test_gpu_coll_bench,test_gpu_transport,bench_gpu_transport} \
    "${BUILD}/bench/coll/kccl-bench" "${BUILD}/runtime/tools/kccl-run" "${OUT}/"
strip "${BINS[@]/#/${OUT}/}" # only these: the folder may also hold the device call's scripts
echo "prebuild: $(du -sh "${OUT}" | cut -f1) of binaries in ${OUT} ($(git -C "${ROOT}" rev-parse --short HEAD))"

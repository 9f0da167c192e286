#!/usr/bin/env bash
# Builds kccl with CUDA and runs every GPU test and benchmark of the transports, then prints a
# short table. For the 2- and 4-GPU H100 hosts; runs as it is, from the repository root or
# anywhere (no network needed where nvcc is installed).
#
# Usage: tests/gpu/run_gpu_tests.sh [BUILD_DIR]      (default: build-gpu in the repository)
# Env:   NVCC=/path/to/nvcc        pick the compiler (default: nvcc on PATH, /usr/local/cuda,
#                                  then scripts/install-cuda-wheels.sh)
#        KCCL_GPU_NRANKS=N         largest group to test (default: every visible GPU)
#        KCCL_GPU_SWEEP=1          also run the variant sweep (bench --sweep, 2 ranks) into
#                                  sweep_2.log (see tests/gpu/NOTES.md)
# Output: the logs under BUILD_DIR/gpu-results/, JSON results in results.json there,
# and a table last. Exit status: 0 when every test passed (benchmarks never fail the run).
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${1:-${ROOT}/build-gpu}"
OUT="${BUILD}/gpu-results"
mkdir -p "${OUT}"
rm -f "${OUT}"/*.log "${OUT}/results.json"

# Leave NVLink multicast alone (GPU.md).
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export KCCL_LOG_LEVEL="${KCCL_LOG_LEVEL:-warn}"
unset KCCL_TRANSPORT

nvcc="${NVCC:-}"
if [ -z "${nvcc}" ]; then
    if command -v nvcc >/dev/null 2>&1; then nvcc="$(command -v nvcc)";
    elif [ -x /usr/local/cuda/bin/nvcc ]; then nvcc=/usr/local/cuda/bin/nvcc;
    else nvcc="$("${ROOT}/scripts/install-cuda-wheels.sh" | tail -1)"; fi
fi
echo "== nvcc: ${nvcc} ($("${nvcc}" --version | tail -1))"
if [ ! -e /usr/include/openssl/hmac.h ]; then
    echo "!! OpenSSL headers missing (libssl-dev): the bootstrap needs libcrypto; the build will fail"
fi

echo "== configure + build (${BUILD})"
cmake -S "${ROOT}" -B "${BUILD}" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKCCL_WERROR=OFF \
    -DKCCL_WITH_CUDA=ON -DCMAKE_CUDA_COMPILER="${nvcc}" -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DKCCL_BUILD_TESTS=OFF -DKCCL_BUILD_GPU_TESTS=ON -DKCCL_BUILD_KUBE=OFF \
    -DKCCL_BUILD_BENCH=OFF >"${OUT}/configure.log" 2>&1 || { tail -30 "${OUT}/configure.log"; exit 1; }
cmake --build "${BUILD}" --target kccl kccl_device_check test_gpu_transport bench_gpu_transport \
    >"${OUT}/build.log" 2>&1 || { grep -E "error|FAILED" -A5 "${OUT}/build.log" | head -60; exit 1; }

ngpu="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)"
ngpu="${KCCL_GPU_NRANKS:-${ngpu:-0}}"
echo "== GPUs: ${ngpu}"
nvidia-smi topo -m >"${OUT}/topo.log" 2>&1 || true

declare -a rows
status=0
run_test() { # name cmd...
    local name="$1"; shift
    local t0=${SECONDS}
    "$@" >"${OUT}/${name}.log" 2>&1
    local rc=$? dt=$((SECONDS - t0))
    local res=PASS
    [ $rc -eq 77 ] && res=SKIP
    [ $rc -ne 0 ] && [ $rc -ne 77 ] && { res="FAIL(rc=${rc})"; status=1; }
    echo "-- ${name}: ${res} (${dt} s)"
    [ "${res}" = PASS ] || tail -20 "${OUT}/${name}.log"
    rows+=("$(printf '%-34s %-12s %s' "${name}" "${res}" "log: ${OUT}/${name}.log")")
}

T="${BUILD}/tests/gpu"
run_test "test_gpu_transport_2ranks" "${T}/test_gpu_transport" 2
if [ "${ngpu}" -ge 4 ]; then
    run_test "test_gpu_transport_${ngpu}ranks" "${T}/test_gpu_transport" "${ngpu}"
fi
run_test "bench_gpu_transport_2" "${T}/bench_gpu_transport" 2 --json "${OUT}/results.json"
if [ "${ngpu}" -gt 2 ]; then
    run_test "bench_gpu_transport_${ngpu}" "${T}/bench_gpu_transport" "${ngpu}" \
        --json "${OUT}/results.json"
fi
# Set-up time per phase (transport.c logs it at info level), on every GPU.
KCCL_LOG_LEVEL=info "${T}/bench_gpu_transport" "${ngpu}" --init-only >"${OUT}/init_breakdown.log" 2>&1 || true
if [ "${KCCL_GPU_SWEEP:-0}" = 1 ]; then
    "${T}/bench_gpu_transport" 2 --sweep >"${OUT}/sweep_2.log" 2>&1 || echo "-- sweep: FAILED (rc=$?)"
fi

echo
echo "================ kccl GPU transport results ($(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1), ${ngpu} GPUs) ================"
printf '%-34s %-12s %s\n' "test" "result" ""
for r in "${rows[@]}"; do echo "${r}"; done
echo
printf '%-34s %12s %-8s %s\n' "measure" "value" "unit" "target"
cat "${OUT}"/bench_gpu_transport_*.log 2>/dev/null | awk '
    /^RESULT / {
        name=$2; v=$3; unit=$4; tgt="";
        if (name ~ /^mc_put_1024MiB/) tgt = (v >= 370 ? ">= 370 GB/s: met" : ">= 370 GB/s: MISSED");
        if (name == "sig_rtt")        tgt = (v <= 2   ? "<= 2 us: met"     : "<= 2 us: MISSED (fence-ordered signal)");
        if (name ~ /^ll_rtt/)         tgt = (v <= 2   ? "<= 2 us: met (data-carrying signal)" : "<= 2 us: MISSED");
        if (name == "init_4gpu")      tgt = (v <= 100 ? "<= 100 ms: met"   : "<= 100 ms: MISSED");
        if (!(name in seen)) { seen[name]=1; printf "%-34s %12.2f %-8s %s\n", name, v, unit, tgt }
    }'
exit ${status}

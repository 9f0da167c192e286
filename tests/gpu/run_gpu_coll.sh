#!/usr/bin/env bash
# Builds kccl with CUDA, runs the GPU collectives' correctness test on 2 GPUs and on every GPU
# of the host (4 where there are 4), then times all-reduce and all-gather against NCCL (CUDA
# graphs, NVLS off) with kccl-bench (bench/coll, --compare nccl) and with test_gpu_coll_bench
# (its --sweep times each algorithm for the selection table), and prints short tables. For
# the 2- and 4-GPU H100 hosts.
#
# Usage: tests/gpu/run_gpu_coll.sh [BUILD_DIR]      (default: build-gpu in the repository)
# Env:   NVCC=/path/to/nvcc        the compiler (default: nvcc on PATH, /usr/local/cuda, then
#                                  scripts/install-cuda-wheels.sh)
#        KCCL_GPU_PREBUILT=DIR     use test_gpu_coll, test_gpu_coll_bench (and kccl-bench, with
#                                  kccl-run beside it) from DIR (tests/gpu/prebuild.sh) when they
#                                  run here (no build)
#        KCCL_NCCL_LIB=PATH        libnccl.so.2 to compare with (default: PyTorch's, else the
#                                  system's)
#        KCCL_COLL_QUICK=1         the shorter correctness test (--quick)
#        KCCL_COLL_SWEEP=1         also time each forced algorithm (selection table)
#        KCCL_COLL_SKIP_TESTS=1    benchmark only
#        KCCL_COLL_TIMEOUT=S       limit for each test and benchmark run (default 900 s)
#        KCCL_COLL_KBENCH=0        skip kccl-bench (bench/coll: the project's benchmark; default on)
# Output: logs under BUILD_DIR/coll-results/, the table last. Exit status 0 when every test
# passed (the benchmark never fails the run).
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${1:-${ROOT}/build-gpu}"
OUT="${BUILD}/coll-results"
mkdir -p "${OUT}"
rm -f "${OUT}"/*.log

# Leave NVLink multicast alone (GPU.md).
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export KCCL_LOG_LEVEL="${KCCL_LOG_LEVEL:-warn}"
unset KCCL_TRANSPORT KCCL_COLL_ALGO

T=""
KB=""
pre="${KCCL_GPU_PREBUILT:-}"
if [ -n "${pre}" ] && "${pre}/test_gpu_coll" 1 >/dev/null 2>&1; [ $? -eq 2 ]; then
    T="${pre}"
    [ -x "${pre}/kccl-bench" ] && KB="${pre}/kccl-bench" # tests/gpu/prebuild.sh puts it there
    echo "== prebuilt binaries: ${T}"
else
    nvcc="${NVCC:-}"
    if [ -z "${nvcc}" ]; then
        if command -v nvcc >/dev/null 2>&1; then nvcc="$(command -v nvcc)";
        elif [ -x /usr/local/cuda/bin/nvcc ]; then nvcc=/usr/local/cuda/bin/nvcc;
        else nvcc="$("${ROOT}/scripts/install-cuda-wheels.sh" | tail -1)"; fi
    fi
    echo "== nvcc: ${nvcc} ($("${nvcc}" --version | tail -1)); build ${BUILD}"
    cmake -S "${ROOT}" -B "${BUILD}" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKCCL_WERROR=OFF \
        -DKCCL_WITH_CUDA=ON -DCMAKE_CUDA_COMPILER="${nvcc}" -DCMAKE_CUDA_ARCHITECTURES=90 \
        -DKCCL_BUILD_TESTS=OFF -DKCCL_BUILD_GPU_TESTS=ON -DKCCL_BUILD_KUBE=OFF \
        -DKCCL_BUILD_BENCH=ON >"${OUT}/configure.log" 2>&1 || { tail -30 "${OUT}/configure.log"; exit 1; }
    cmake --build "${BUILD}" --target test_gpu_coll test_gpu_coll_bench kccl-bench kccl-run \
        >"${OUT}/build.log" 2>&1 ||
        { grep -E "error|FAILED" -A5 "${OUT}/build.log" | head -60; exit 1; }
    T="${BUILD}/tests/gpu"
    KB="${BUILD}/bench/coll/kccl-bench"
fi

if [ -z "${KCCL_NCCL_LIB:-}" ]; then
    for d in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
        [ -e "${d}/nvidia/nccl/lib/libnccl.so.2" ] && { KCCL_NCCL_LIB="${d}/nvidia/nccl/lib/libnccl.so.2"; break; }
    done
    [ -z "${KCCL_NCCL_LIB:-}" ] && KCCL_NCCL_LIB="$(ldconfig -p 2>/dev/null | awk '/libnccl.so.2 /{print $NF; exit}')"
fi
export KCCL_NCCL_LIB
echo "== NCCL: ${KCCL_NCCL_LIB:-none}"

ngpu="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)"
echo "== GPUs: ${ngpu}"
limit="${KCCL_COLL_TIMEOUT:-900}"
quick=""
[ "${KCCL_COLL_QUICK:-0}" = 1 ] && quick="--quick"
declare -a rows
status=0
run_test() { # name cmd...
    local name="$1"; shift
    local t0=${SECONDS}
    timeout "${limit}" "$@" >"${OUT}/${name}.log" 2>&1
    local rc=$? dt=$((SECONDS - t0)) res=PASS
    [ $rc -eq 77 ] && res=SKIP
    [ $rc -ne 0 ] && [ $rc -ne 77 ] && { res="FAIL(rc=${rc})"; status=1; }
    echo "-- ${name}: ${res} (${dt} s)"
    [ "${res}" = PASS ] || tail -25 "${OUT}/${name}.log"
    rows+=("$(printf '%-28s %-12s %s' "${name}" "${res}" "$(grep -h 'cases' "${OUT}/${name}.log" | tail -1)")")
}

if [ "${KCCL_COLL_SKIP_TESTS:-0}" != 1 ]; then
    run_test test_gpu_coll_2ranks "${T}/test_gpu_coll" 2 ${quick}
    [ "${ngpu}" -ge 4 ] && run_test test_gpu_coll_4ranks "${T}/test_gpu_coll" 4 ${quick}
fi
sweep=""
[ "${KCCL_COLL_SWEEP:-0}" = 1 ] && sweep="--sweep"
# 2 ranks: GPUs 0 and 1 (harness: rank r uses GPU r).
timeout "${limit}" "${T}/test_gpu_coll_bench" 2 ${sweep} >"${OUT}/bench_2.log" 2>&1 || echo "-- bench 2: FAILED"
[ "${ngpu}" -ge 4 ] && { timeout "${limit}" "${T}/test_gpu_coll_bench" 4 ${sweep} >"${OUT}/bench_4.log" 2>&1 || echo "-- bench 4: FAILED"; }

# kccl-bench (the project's benchmark): CUDA graphs of 16 collectives, NCCL in the same run.
kbench() { # nranks op maxbytes
    timeout "${limit}" "${KB}" -g "$1" --op "$2" -b 8 -e "$3" -f 4 -n 32 -w 5 --graph -G 16 \
        --compare nccl --json "${OUT}/kb_$2_$1.json" >"${OUT}/kb_$2_$1.log" 2>&1 ||
        echo "-- kccl-bench $2 $1 ranks: exit $?"
}
if [ -n "${KB}" ] && [ -x "${KB}" ] && [ "${KCCL_COLL_KBENCH:-1}" = 1 ]; then
    for nr in 2 4; do
        [ "${ngpu}" -ge "${nr}" ] || continue
        kbench "${nr}" all_reduce 1G
        kbench "${nr}" all_gather 256M
    done
fi

echo
echo "================ kccl GPU collectives ($(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1), ${ngpu} GPUs) ================"
for r in "${rows[@]}"; do echo "${r}"; done
echo
printf '%-10s %2s %10s %9s %9s %8s %8s %6s %9s %9s %s\n' coll n bytes kccl_us nccl_us kccl_bw nccl_bw wrong eager_k eager_n "ll/ll2/zc/ce/cep us"
cat "${OUT}"/bench_*.log 2>/dev/null | awk '/^RESULT /{
    extra = ($19 == "ll_us") ? sprintf("%s/%s/%s/%s/%s", $20, $22, $24, $26, $28) : "";
    printf "%-10s %2s %10s %9s %9s %8s %8s %6s %9s %9s %s\n", $2, $3, $4, $6, $8, $10, $12, $14, $16, $18, extra }'
for f in "${OUT}"/kb_*.log; do
    [ -e "${f}" ] || continue
    echo
    echo "== kccl-bench $(basename "${f}" .log) (out of place | in place | NCCL out of place | in place)"
    grep -E '^ +[0-9]+ ' "${f}"
done
exit ${status}

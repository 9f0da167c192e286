#!/usr/bin/env bash
# The rendezvous benchmark (BENCHMARKS.md "Rendezvous on Kubernetes") on the real local
# control plane: kccl-bench-rendezvous in four rows, a summary line each, JSON per row.
#
#   64 pods, rank 0 last      (the goal's row: last pod Running -> every handoff, p99 <= 250 ms)
#   64 pods, a member last    (one sidecar's own path)
#   24 pods, rank 0 last, with kccl-demo in every pod (-> bootstrap done everywhere)
#   256 pods, rank 0 last     (when the box has >= 2 GiB free memory)
#
# Usage: e2e/sidecar/run_rendezvous.sh [--dynamic] [--quick]
#   --dynamic  measure kccl-sidecar (shared libcurl) instead of kccl-sidecar-static
#   --quick    fewer runs per row (smoke)
# Environment: KCCL_BUILD_DIR (default build/), OUT (default $KCCL_BUILD_DIR/e2e/sidecar/results),
# KCCL_CP_DIR etc. as for cp.sh. Starts the control plane if it is not up, and stops it at the
# end only in that case. Needs root.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${KCCL_BUILD_DIR:-${ROOT}/build}"
OUT="${OUT:-${BUILD}/e2e/sidecar/results}"
CP="${ROOT}/e2e/controlplane/cp.sh"
static=1
runs64=20 runs_member=10 runs_boot=5 runs256=10
for a in "$@"; do
    case "$a" in
        --dynamic) static=0 ;;
        --quick) runs64=3 runs_member=2 runs_boot=2 runs256=2 ;;
        *) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//; /^set -euo/d'; exit 2 ;;
    esac
done
log() { printf '[rendezvous %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

started_cp=0
cleanup() { if [[ ${started_cp} -eq 1 ]]; then "${CP}" down >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT
if ! "${CP}" status >/dev/null 2>&1; then
    log "starting the control plane"
    "${CP}" up
    started_cp=1
fi

args=()
if [[ ${static} -eq 1 ]]; then
    deps="$("${ROOT}/sidecar/static/build-deps.sh")"
    args+=(-DKCCL_SIDECAR_STATIC_DEPS="${deps}")
fi
[[ -f "${BUILD}/build.ninja" ]] || cmake -S "${ROOT}" -B "${BUILD}" -G Ninja >/dev/null
cmake -S "${ROOT}" -B "${BUILD}" "${args[@]}" >/dev/null
targets=(kccl-bench-rendezvous kccl-demo kccl-sidecar)
[[ ${static} -eq 1 ]] && targets+=(kccl-sidecar-static)
ninja -C "${BUILD}" "${targets[@]}" >/dev/null
bin="${BUILD}/sidecar/kccl-sidecar"
[[ ${static} -eq 1 ]] && bin="${BUILD}/sidecar/kccl-sidecar-static"
bench="${BUILD}/e2e/sidecar/kccl-bench-rendezvous"
mkdir -p "${OUT}"
tag=$([[ ${static} -eq 1 ]] && echo static || echo dynamic)

row() { # name, bench args...
    local name="$1"
    shift
    log "${name}"
    "${bench}" --sidecar "${bin}" --json "${OUT}/${name}-${tag}.json" "$@" | tee "${OUT}/${name}-${tag}.txt" |
        grep -E '^# (last|kccl|vm|sidecar)' || true
    sleep 5 # let the apiserver close the previous row's watches
}
row rendezvous-64-rank0-last -n 64 -r "${runs64}"
row rendezvous-64-member-last -n 64 -r "${runs_member}" --last member
row rendezvous-24-bootstrap -n 24 -r "${runs_boot}" --bootstrap
avail_kib=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
if [[ ${avail_kib} -ge 2097152 ]]; then
    row rendezvous-256-rank0-last -n 256 -r "${runs256}"
else
    log "skipping 256 pods: ${avail_kib} KiB available, want 2 GiB"
fi
log "results in ${OUT}"

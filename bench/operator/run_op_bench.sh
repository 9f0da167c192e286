#!/usr/bin/env bash
# Runs kccl-bench-operator against the local control plane (which must be up:
# e2e/controlplane/cp.sh up). Usage: bench/operator/run_op_bench.sh [BUILD_DIR] [PODS]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:-${ROOT}/build}"
PODS="${2:-1000}"
"${ROOT}/e2e/controlplane/cp.sh" status >/dev/null || { echo "SKIP: the control plane is not up"; exit 77; }
eval "$("${ROOT}/e2e/controlplane/cp.sh" env)"
kubectl apply -f "${ROOT}/helm/kccl/crds/commgroups.kccl.io.yaml" >/dev/null
kubectl wait --for condition=established --timeout=60s crd/commgroups.kccl.io >/dev/null
exec "${BUILD}/bench/operator/kccl-bench-operator" --operator "${BUILD}/operator/kccl-operator" --pods "${PODS}"

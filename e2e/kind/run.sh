#!/usr/bin/env bash
# The kccl scenario on kind (Kubernetes in Docker): the real images, a real kubelet and
# container runtime. Where this machine has no Docker, the local scenario (e2e/local/) covers
# the same path with a node agent instead of kubelet.
#
#   1. builds the four images (deploy/docker/*.Dockerfile) tagged with the chart's appVersion
#   2. kind create cluster (kind-config.yaml: 1 control plane + 2 workers), kind load the
#      operator, sidecar and runtime-cpu images (the CUDA runtime image is built, not loaded:
#      kind nodes have no GPU)
#   3. helm install helm/kccl (values.yaml here) and waits for the operator
#   4. applies deploy/examples/indexed-job.yaml (CommGroup + 8-rank Indexed Job of kccl-demo),
#      waits for the CommGroup Ready and the Job Complete, checks the injection, rank 0's
#      output and the Events (no webhook denials, Events on the CommGroup)
#   5. deletes the example, checks the group Secret is garbage-collected, helm uninstall, and
#      checks that nothing of kccl is left (the CRD stays, as helm leaves crds/: deleted last)
#   6. deletes the cluster (on every exit path; KCCL_KIND_KEEP=1 keeps it)
# Every wait has a deadline. Exit 0: passed; 1: failed; 77: no Docker / kind (nothing run).
#
# Environment:
#   KCCL_KIND_CLUSTER=kccl-e2e   cluster name
#   KCCL_KIND_KEEP=0             1: keep the cluster at the end (debugging)
#   KCCL_KIND_SKIP_CUDA_IMAGE=0  1: do not build ghcr.io/kccl/kccl-runtime (a ~3 GB CUDA base)
#   KCCL_KIND_NODE_IMAGE=        kindest/node image (default: the one the kind release pins)
#   KCCL_KIND_TIMEOUT=300        seconds for each of: CommGroup Ready, Job Complete
#   KCCL_KIND_EXISTING=0         1: skip steps 1, 2 and 6 and run 3-5 against the cluster of
#                                $KUBECONFIG as it is (its nodes must have the images); used to
#                                check this script on the local control plane (README.md)
#   KIND, HELM, KUBECTL          binaries (default: PATH, then ~/.cache/kccl)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="${ROOT}/e2e/kind"
CLUSTER="${KCCL_KIND_CLUSTER:-kccl-e2e}"
TIMEOUT="${KCCL_KIND_TIMEOUT:-300}"
NS=kccl-system
APP_NS=default
GROUP=kccl-demo
WORLD=8
TAG="$(awk -F'"' '/^appVersion:/ { print $2 }' "${ROOT}/helm/kccl/Chart.yaml")"
# image name -> Dockerfile (deploy/docker/<stem>.Dockerfile)
IMAGES=(
    "ghcr.io/kccl/kccl-operator:operator.Dockerfile"
    "ghcr.io/kccl/kccl-sidecar:sidecar.Dockerfile"
    "ghcr.io/kccl/kccl-runtime-cpu:runtime-cpu.Dockerfile"
    "ghcr.io/kccl/kccl-runtime:runtime.Dockerfile"
)
LOADED=(ghcr.io/kccl/kccl-operator ghcr.io/kccl/kccl-sidecar ghcr.io/kccl/kccl-runtime-cpu)

T0=$(date +%s)
log() { printf '[kind %s +%ss] %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - T0))" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

# ------------------------------------------------------------------ prerequisites
EXISTING="${KCCL_KIND_EXISTING:-0}"
if [[ "${EXISTING}" != 1 ]] &&
    { ! command -v docker >/dev/null 2>&1 || ! timeout 30 docker info >/dev/null 2>&1; }; then
    echo "e2e/kind: no container engine (docker) on this machine: the kind scenario needs one; nothing was run"
    if command -v docker >/dev/null 2>&1; then
        echo "e2e/kind: (the docker client is installed, but no daemon answers: docker info fails)" >&2
    fi
    exit 77
fi
find_tool() {  # find_tool NAME OVERRIDE: the binary, or nothing
    local name=$1 override=$2 b
    if [[ -n "${override}" ]]; then echo "${override}"; return; fi
    if b="$(command -v "${name}")"; then echo "${b}"; return; fi
    b="$("${ROOT}/e2e/controlplane/build.sh" --print-bin-dir)/${name}"
    if [[ -x "${b}" ]]; then echo "${b}"; return; fi
    b="${KCCL_CACHE_DIR:-${HOME}/.cache/kccl}/bin/${name}"
    if [[ -x "${b}" ]]; then echo "${b}"; fi
}
KIND_BIN="$(find_tool kind "${KIND:-}")"
HELM_BIN="$(find_tool helm "${HELM:-}")"
KUBECTL_BIN="$(find_tool kubectl "${KUBECTL:-}")"
if [[ -z "${KIND_BIN}" && "${EXISTING}" != 1 ]]; then
    echo "e2e/kind: kind is not installed: GOBIN=~/.cache/kccl/bin go install sigs.k8s.io/kind@latest; nothing was run"
    exit 77
fi
[[ -n "${HELM_BIN}" && -n "${KUBECTL_BIN}" ]] ||
    fail "helm or kubectl missing: build them with e2e/controlplane/build.sh (or set HELM, KUBECTL)"

if [[ "${EXISTING}" == 1 ]]; then
    [[ -n "${KUBECONFIG:-}" ]] || fail "KCCL_KIND_EXISTING=1 needs KUBECONFIG"
    KUBECONFIG_FILE="${KUBECONFIG}"
else
    KUBECONFIG_FILE="$(mktemp)"
    export KUBECONFIG="${KUBECONFIG_FILE}"
fi
k() { "${KUBECTL_BIN}" --request-timeout=30s "$@"; }

cleanup() {
    local rc=$?
    if [[ ${rc} -ne 0 ]]; then
        log "diagnostics:"
        k get pods -A -o wide 2>&1 | head -n 40 >&2 || true
        k get commgroups -A 2>&1 >&2 || true
        k -n "${NS}" logs deploy/kccl-operator --tail=60 2>&1 >&2 || true
        k get events -A --sort-by=.lastTimestamp 2>&1 | tail -n 30 >&2 || true
    fi
    if [[ "${EXISTING}" == 1 ]]; then
        if [[ ${rc} -ne 0 ]]; then   # leave the cluster as found
            k delete -f "${ROOT}/deploy/examples/indexed-job.yaml" --ignore-not-found \
                --timeout=60s >/dev/null 2>&1 || true
            "${HELM_BIN}" uninstall kccl --namespace "${NS}" --wait --timeout 60s \
                >/dev/null 2>&1 || true
        fi
    elif [[ "${KCCL_KIND_KEEP:-0}" == 1 ]]; then
        log "keeping cluster ${CLUSTER} (KCCL_KIND_KEEP=1); kubeconfig ${KUBECONFIG_FILE}"
    else
        "${KIND_BIN}" delete cluster --name "${CLUSTER}" >/dev/null 2>&1 || true
        rm -f "${KUBECONFIG_FILE}"
    fi
    exit "${rc}"
}

# ------------------------------------------------------------------ 1. images
build_images() {
    local entry image dockerfile blog
    for entry in "${IMAGES[@]}"; do
        image="${entry%%:*}" dockerfile="${entry#*:}"
        if [[ "${image}" == ghcr.io/kccl/kccl-runtime && "${KCCL_KIND_SKIP_CUDA_IMAGE:-0}" == 1 ]]; then
            log "skipping ${image} (KCCL_KIND_SKIP_CUDA_IMAGE=1)"
            continue
        fi
        log "docker build ${image}:${TAG} (deploy/docker/${dockerfile})"
        blog="${KUBECONFIG_FILE}.build-${dockerfile%.Dockerfile}.log"
        if ! DOCKER_BUILDKIT=1 docker build --progress=plain -f "${ROOT}/deploy/docker/${dockerfile}" \
            -t "${image}:${TAG}" "${ROOT}" >"${blog}" 2>&1; then
            tail -n 40 "${blog}" >&2
            fail "docker build of ${image} failed (log: ${blog})"
        fi
        rm -f "${blog}"
    done
}

# ------------------------------------------------------------------ 2. cluster
create_cluster() {
    local node_image=() image
    [[ -n "${KCCL_KIND_NODE_IMAGE:-}" ]] && node_image=(--image "${KCCL_KIND_NODE_IMAGE}")
    log "kind create cluster ${CLUSTER}"
    "${KIND_BIN}" create cluster --name "${CLUSTER}" --config "${HERE}/kind-config.yaml" \
        --kubeconfig "${KUBECONFIG_FILE}" --wait 180s ${node_image[@]+"${node_image[@]}"}
    for image in "${LOADED[@]}"; do
        "${KIND_BIN}" load docker-image --name "${CLUSTER}" "${image}:${TAG}" >/dev/null
    done
    log "images loaded"
}

trap cleanup EXIT
if [[ "${EXISTING}" == 1 ]]; then
    log "KCCL_KIND_EXISTING=1: the cluster of ${KUBECONFIG}; no image build, no kind"
else
    build_images
    create_cluster
fi

# ------------------------------------------------------------------ 3. install
"${HELM_BIN}" install kccl "${ROOT}/helm/kccl" --namespace "${NS}" --create-namespace \
    -f "${HERE}/values.yaml" --wait --timeout 180s
k -n "${NS}" rollout status deployment/kccl-operator --timeout=120s
k wait --for=condition=Established crd/commgroups.kccl.io --timeout=60s
log "kccl installed"

# ------------------------------------------------------------------ 4. the example group
k apply -f "${ROOT}/deploy/examples/indexed-job.yaml"
start=$(date +%s)
k -n "${APP_NS}" wait --for=condition=Ready "commgroup/${GROUP}" --timeout="${TIMEOUT}s" ||
    fail "CommGroup ${GROUP} not Ready within ${TIMEOUT} s"
log "CommGroup Ready after $(($(date +%s) - start)) s"
k -n "${APP_NS}" get commgroups
k -n "${APP_NS}" wait --for=condition=complete "job/${GROUP}" --timeout="${TIMEOUT}s" ||
    fail "Job ${GROUP} not Complete within ${TIMEOUT} s"
log "Job Complete after $(($(date +%s) - start)) s"

pod0="$(k -n "${APP_NS}" get pods -l "batch.kubernetes.io/job-completion-index=0,job-name=${GROUP}" \
    -o jsonpath='{.items[0].metadata.name}')"
[[ -n "${pod0}" ]] || fail "no pod of rank 0"
inits="$(k -n "${APP_NS}" get pod "${pod0}" -o jsonpath='{.spec.initContainers[*].name}')"
[[ " ${inits} " == *" kccl-sidecar "* ]] || fail "rank 0's pod has no kccl-sidecar (init containers: ${inits})"
sa="$(k -n "${APP_NS}" get pod "${pod0}" -o jsonpath='{.spec.serviceAccountName}')"
[[ "${sa}" == kccl-sidecar ]] || fail "rank 0's pod runs as ServiceAccount ${sa}, not kccl-sidecar"
if out0="$(k -n "${APP_NS}" logs "${pod0}" -c demo 2>&1)"; then
    printf '%s\n' "${out0}" >&2
    grep -q "bootstrap: ${WORLD} ranks" <<<"${out0}" || fail "rank 0's kccl-demo output lacks its table"
elif [[ "${EXISTING}" == 1 ]]; then
    log "no container logs from this cluster (${out0}); not checked"
else
    fail "kubectl logs of rank 0 failed: ${out0}"
fi

events="$(k -n "${APP_NS}" get events -o jsonpath='{range .items[*]}{.type} {.involvedObject.kind}/{.involvedObject.name} {.reason}: {.message}{"\n"}{end}')"
grep -q "CommGroup/${GROUP}" <<<"${events}" || fail "no Events on CommGroup ${GROUP}"
if grep -E "^Warning Job/${GROUP} FailedCreate" <<<"${events}"; then
    fail "the Job could not create pods (webhook denial?)"
fi
log "events: $(grep -c "CommGroup/${GROUP}" <<<"${events}") on the CommGroup, no pod creation failures"

# ------------------------------------------------------------------ 5. uninstall
k delete -f "${ROOT}/deploy/examples/indexed-job.yaml" --wait --timeout=120s
deadline=$(($(date +%s) + 60))
while k -n "${APP_NS}" get secret "kccl-group-${GROUP}" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || fail "Secret kccl-group-${GROUP} outlived its CommGroup by 60 s"
    sleep 2
done
"${HELM_BIN}" uninstall kccl --namespace "${NS}" --wait --timeout 120s
left=()
for obj in mutatingwebhookconfiguration/kccl-sidecar-injector clusterrole/kccl-operator \
           clusterrolebinding/kccl-operator; do
    k get "${obj}" >/dev/null 2>&1 && left+=("${obj}")
done
for obj in deployment/kccl-operator poddisruptionbudget/kccl-operator service/kccl-webhook \
           secret/kccl-webhook-tls serviceaccount/kccl-operator \
           role/kccl-operator-leader-election rolebinding/kccl-operator-leader-election; do
    k -n "${NS}" get "${obj}" >/dev/null 2>&1 && left+=("${NS}/${obj}")
done
for obj in serviceaccount/kccl-sidecar role/kccl-sidecar rolebinding/kccl-sidecar; do
    k -n "${APP_NS}" get "${obj}" >/dev/null 2>&1 && left+=("${APP_NS}/${obj}")
done
deadline=$(($(date +%s) + 60))
while [[ -n "$(k -n "${NS}" get pods -o name 2>/dev/null)" ]]; do
    (($(date +%s) < deadline)) || { left+=("pods in ${NS}"); break; }
    sleep 2
done
((${#left[@]} == 0)) || fail "left after helm uninstall: ${left[*]}"
k get crd commgroups.kccl.io >/dev/null || fail "the CRD is gone: helm must leave crds/ in place"
k delete crd commgroups.kccl.io --timeout=60s
log "uninstalled; nothing of kccl left (the CRD, which helm keeps, deleted by hand)"
log "PASSED in $(($(date +%s) - T0)) s"

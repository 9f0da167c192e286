#!/usr/bin/env bash
# Smoke test of the local control plane: up, use it, down, check nothing is left.
# Last line of output: "N passed, N failed". Exit status 0 only if none failed.
#
# Uses the same environment variables as cp.sh (KCCL_CP_DIR, KCCL_CP_BRIDGE, ...).
# Refuses to run while a control plane is already up in that state directory,
# because it ends with `cp.sh down`.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CP="${HERE}/cp.sh"
# shellcheck source=versions.env
source "${HERE}/versions.env"
STATE="${KCCL_CP_DIR:-/tmp/kccl-cp}"
STATE="${STATE%/}"
BRIDGE="${KCCL_CP_BRIDGE:-kccl-br0}"
NETNS_PREFIX="${KCCL_CP_NETNS_PREFIX:-kccl-}"
MAX_UP_S="${KCCL_SMOKE_MAX_UP_S:-30}"
NS="${NETNS_PREFIX}smoke"          # a stand-in pod network namespace
NAMESPACE="kccl-smoke"

passed=0
failed=0
ok()   { passed=$((passed + 1)); printf 'PASS  %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$*"; }
# check DESCRIPTION CMD...: runs CMD, PASS if it exits 0
check() {
    local what="$1"; shift
    local out
    if out="$("$@" 2>&1)"; then ok "${what}"; else fail "${what}"; printf '      %s\n' "${out//$'\n'/$'\n'      }" | tail -n 15; fi
}
# expect DESCRIPTION WANT CMD...: PASS if CMD's stdout equals WANT
expect() {
    local what="$1" want="$2"; shift 2
    local got
    got="$("$@" 2>&1)" || true
    if [[ "${got}" == "${want}" ]]; then ok "${what} (${got})"
    else fail "${what}: want '${want}', got '${got}'"
    fi
}
finish() {
    echo "${passed} passed, ${failed} failed"
    [[ ${failed} -eq 0 ]]
}

tmp="$(mktemp -d)"
downed=0
cleanup() {
    rm -rf "${tmp}"
    if [[ ${downed} -eq 0 ]]; then "${CP}" down >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

if "${CP}" status >/dev/null 2>&1; then
    echo "a control plane is already up in ${STATE}; run '${CP} down' first (this test ends with down)" >&2
    fail "precondition: no control plane running in ${STATE}"
    finish
    exit 1
fi

# ------------------------------------------------------------------ up
t0=$(date +%s.%N)
if "${CP}" up; then
    up_s="$(awk -v a="${t0}" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
    ok "cp.sh up (${up_s} s)"
    if awk -v t="${up_s}" -v m="${MAX_UP_S}" 'BEGIN { exit !(t <= m) }'; then
        ok "up within ${MAX_UP_S} s"
    else
        fail "up took ${up_s} s (limit ${MAX_UP_S} s)"
    fi
else
    fail "cp.sh up"
    finish
    exit 1
fi

check "cp.sh status reports healthy" "${CP}" status
if env_out="$("${CP}" env)"; then
    eval "${env_out}"
    ok "cp.sh env"
else
    fail "cp.sh env"
fi
check "admin kubeconfig exists" test -s "${KUBECONFIG:-/nonexistent}"
KUBECTL="${KCCL_CP_BIN}/kubectl"
HELM="${KCCL_CP_BIN}/helm"
k() { "${KUBECTL}" --request-timeout=10s "$@"; }

# ------------------------------------------------------------------ version
expect "/version reports the pinned release" "${KCCL_K8S_VERSION}" \
    bash -c "'${KUBECTL}' get --raw /version | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"gitVersion\"])'"
expect "kubectl client version" "${KCCL_K8S_VERSION}" \
    bash -c "'${KUBECTL}' version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"clientVersion\"][\"gitVersion\"])'"
expect "helm version" "${KCCL_HELM_VERSION}" "${HELM}" version --template '{{ .Version }}'

# helm's default kube version (no --kube-version) is the pinned minor.
mkdir -p "${tmp}/chart/templates"
printf 'apiVersion: v2\nname: smoke\nversion: 0.1.0\n' >"${tmp}/chart/Chart.yaml"
printf 'kube: {{ .Capabilities.KubeVersion.Major }}.{{ .Capabilities.KubeVersion.Minor }}\n' \
    >"${tmp}/chart/templates/kube.txt"
minor="$(cut -d. -f2 <<<"${KCCL_K8S_VERSION}")"
expect "helm template default kube version" "kube: 1.${minor}" \
    bash -c "'${HELM}' template smoke '${tmp}/chart' | grep '^kube:'"

# ------------------------------------------------------------------ objects
check "create namespace" k create namespace "${NAMESPACE}"
check "create serviceaccount" k -n "${NAMESPACE}" create serviceaccount smoke-sa
wait_default_sa() {
    for _ in $(seq 1 50); do
        k -n "${NAMESPACE}" get serviceaccount default >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}
check "controller-manager creates the namespace's default ServiceAccount" wait_default_sa

token=""
if token="$(k -n "${NAMESPACE}" create token smoke-sa --duration=10m)" && [[ -n "${token}" ]]; then
    ok "TokenRequest (kubectl create token)"
else
    fail "TokenRequest (kubectl create token)"
fi
as_sa() {
    "${KUBECTL}" --kubeconfig=/dev/null --request-timeout=10s --server "${KCCL_CP_APISERVER}" \
        --certificate-authority "${KCCL_CP_CA}" --token "${token}" "$@"
}
expect "token authenticates as the ServiceAccount" "system:serviceaccount:${NAMESPACE}:smoke-sa" \
    as_sa auth whoami -o 'jsonpath={.status.userInfo.username}'
expect "RBAC denies the ServiceAccount listing secrets" "no" as_sa auth can-i list secrets -n "${NAMESPACE}"

cat >"${tmp}/pod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: smoke-pod
  namespace: ${NAMESPACE}
spec:
  serviceAccountName: smoke-sa
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
EOF
check "create pod" k apply -f "${tmp}/pod.yaml"
expect "pod stays Pending (no kubelet here)" "Pending" \
    k -n "${NAMESPACE}" get pod smoke-pod -o 'jsonpath={.status.phase}'
expect "ServiceAccount admission added the projected token volume" "kube-api-access" \
    bash -c "'${KUBECTL}' -n '${NAMESPACE}' get pod smoke-pod -o 'jsonpath={.spec.volumes[0].name}' | cut -d- -f1-3"

check "audit log records the ServiceAccount's requests" \
    grep -q "\"username\":\"system:serviceaccount:${NAMESPACE}:smoke-sa\"" "${KCCL_CP_AUDIT_LOG}"

# ------------------------------------------------------------------ pod network
# A stand-in pod: its own netns with a veth into the bridge; it must reach the
# apiserver on the bridge address and must have no route off this machine.
pod_net() {
    ip netns add "${NS}"
    ip link add "${NS}-h" type veth peer name eth0 netns "${NS}"
    ip link set "${NS}-h" master "${KCCL_CP_BRIDGE}" up
    ip -n "${NS}" link set lo up
    # An address in the bridge's own /16 (10.244.0.1/16 by default -> 10.244.200.2/16).
    local prefix="${KCCL_CP_BRIDGE_IP%.*.*}"
    ip -n "${NS}" addr add "${prefix}.200.2/16" dev eth0
    ip -n "${NS}" link set eth0 up
}
check "stand-in pod netns with a veth into ${KCCL_CP_BRIDGE}" pod_net
expect "pod netns reaches the apiserver on the bridge IP" "${KCCL_K8S_VERSION}" \
    bash -c "ip netns exec '${NS}' curl -s --max-time 5 --cacert '${KCCL_CP_CA}' '${KCCL_CP_APISERVER}/version' \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"gitVersion\"])'"
expect "pod netns has no default route" "" ip -n "${NS}" route show default
expect "host routes the pod network only to the bridge" "dev ${KCCL_CP_BRIDGE}" \
    bash -c "ip -4 route show '${KCCL_CP_POD_CIDR}' | awk '{print \$2, \$3}'"
# A process left running in the pod netns: down must stop it.
setsid ip netns exec "${NS}" sleep 600 </dev/null >/dev/null 2>&1 &
pod_proc=$!

# ------------------------------------------------------------------ down
if "${CP}" down; then ok "cp.sh down"; else fail "cp.sh down"; fi
downed=1
check "cp.sh down again (idempotent)" "${CP}" down

leftover_procs() {
    local p exe found=0
    for p in /proc/[0-9]*; do
        exe="$(readlink "${p}/exe" 2>/dev/null || true)"
        case "${exe##*/}" in
            etcd|kube-apiserver|kube-controller-manager|kube-scheduler)
                if tr '\0' ' ' <"${p}/cmdline" 2>/dev/null | grep -qF "${STATE}/"; then
                    echo "left: ${p#/proc/} ${exe}"; found=1
                fi ;;
        esac
    done
    return "${found}"
}
check "no control-plane process left" leftover_procs
gone_or_zombie() {  # our own child stays a zombie until reaped
    [[ ! -e "/proc/$1" ]] || [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" == Z ]]
}
check "process in the pod netns was stopped" gone_or_zombie "${pod_proc}"
expect "no ${NETNS_PREFIX}* network namespace left" "" \
    bash -c "ip netns list | awk '{print \$1}' | grep '^${NETNS_PREFIX}' || true"
check "no bridge ${BRIDGE} left" bash -c "! ip link show '${BRIDGE}' >/dev/null 2>&1"
check "no veth ${NS}-h left" bash -c "! ip link show '${NS}-h' >/dev/null 2>&1"
expect "nothing mounted under ${STATE}" "" bash -c "grep -F ' ${STATE}' /proc/self/mountinfo || true"
check "state dir ${STATE} removed" bash -c "! test -e '${STATE}'"
check "cp.sh status fails when down" bash -c "! '${CP}' status"

finish

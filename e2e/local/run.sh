#!/usr/bin/env bash
# End-to-end scenarios on the local control plane (e2e/controlplane/cp.sh) with
# kccl-node-agent standing in for kubelet + container runtime (README.md).
#
# Usage: e2e/local/run.sh [-b BUILD_DIR] [SCENARIO...]     (root; control plane up)
#
#   a   helm install kccl helm/kccl -> an 8-pod Indexed Job (CPU, TCP) with the kccl
#       annotations: every rank bootstraps and runs kccl-demo, the CommGroup (made by
#       the operator) reaches Ready, Events are recorded; prints helm install -> Ready
#       and the rendezvous times
#   b   a pod deleted mid-run: failurePolicy Restart re-forms the group at a new epoch
#       (every rank bootstraps again); failurePolicy Fail ends in phase Failed
#   c   a process in its own netns, without the group secret, joins through the
#       root's bootstrap port: refused, the root logs it, the group completes
#   d   a 64-pod group: rendezvous times (not in CI: about a minute more on 2 cores)
#   (default: a b c). After the scenarios: helm uninstall, delete what they made, and
#   check that nothing is left (kccl objects, group secrets, webhook configuration,
#   pods, processes, network namespaces); then the agent stops and deletes its Node.
#
# Exit status: 0 all passed, 1 a scenario or the clean-up check failed, 77 skipped
# (not root, control plane down, or a binary missing: the message says which).
# Environment: KCCL_E2E_BUILD (build dir, default build), KCCL_E2E_KEEP=1 keeps the
# agent's state directory (pods' logs) for a look after a failure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${HERE}/../.." && pwd)"
BUILD="${KCCL_E2E_BUILD:-${ROOT}/build}"
while getopts "b:h" o; do
    case "${o}" in
        b) BUILD="${OPTARG}" ;;
        *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
BUILD="$(cd "${BUILD}" && pwd)"
SCENARIOS=("$@")
[[ ${#SCENARIOS[@]} -gt 0 ]] || SCENARIOS=(a b c)

NS=kccl-e2e                # the workload namespace (helm: workloadNamespaces)
RELNS=kccl-system          # the release namespace
NODE=kccl-e2e-node
STATE="/tmp/kccl-e2e-agent.$$"
# The images' contents (images.map's ${BUILD}): a copy outside /tmp. The example pods mount an
# emptyDir at /tmp (read-only root filesystem), which hides a build tree under /tmp from them:
# a checkout cloned into /tmp ran no container ("exec .../kccl-demo: No such file or directory").
IMAGES="/var/tmp/kccl-e2e-images.$$"
AGENT_PID=""
INSTALLED=0
RESULTS=()
FAILED=0
T_START=$(date +%s.%N)

log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
skip() { log "SKIP: $*"; exit 77; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
ms_now() { date +%s%3N; }

[[ ${EUID} -eq 0 ]] || skip "needs root (network namespaces, mounts)"
"${ROOT}/e2e/controlplane/cp.sh" status >/dev/null 2>&1 || skip "the control plane is not up (e2e/controlplane/cp.sh up)"
eval "$("${ROOT}/e2e/controlplane/cp.sh" env)"
for b in e2e/local/kccl-node-agent sidecar/kccl-sidecar operator/kccl-operator \
         runtime/tools/kccl-demo tests/integration/e2e/kccl-e2e-intruder; do
    [[ -x "${BUILD}/${b}" ]] || skip "${BUILD}/${b} is not built (ninja -C ${BUILD})"
done
command -v helm >/dev/null || skip "helm not found (e2e/controlplane/build.sh caches it with kubectl)"

kc() { kubectl --request-timeout=20s "$@"; }

# wait_until DESCRIPTION SECONDS COMMAND...: polls every 0.2 s; 1 at the deadline.
wait_until() {
    local what="$1" deadline
    deadline=$(awk -v n="$(now)" -v s="$2" 'BEGIN { printf "%d", n + s }')
    shift 2
    until "$@" >/dev/null 2>&1; do
        if (( $(date +%s) >= deadline )); then
            log "timed out waiting for ${what}"
            return 1
        fi
        sleep 0.2
    done
}

# ------------------------------------------------------------------ agent
# stage_images: the binaries that images.map names, copied under ${IMAGES} with the build
# tree's layout (what an image build would put in the image).
stage_images() {
    rm -rf "${IMAGES}" && mkdir -p "${IMAGES}/sidecar" "${IMAGES}/operator" "${IMAGES}/runtime/tools" ||
        { log "cannot create ${IMAGES} (the images' copy outside /tmp)"; return 1; }
    cp "${BUILD}/sidecar/kccl-sidecar" "${IMAGES}/sidecar/" &&
        cp "${BUILD}/operator/kccl-operator" "${IMAGES}/operator/" &&
        cp "${BUILD}"/runtime/tools/kccl-{demo,run,info} "${IMAGES}/runtime/tools/" ||
        { log "copying the images' binaries into ${IMAGES} failed"; return 1; }
}

start_agent() {
    mkdir -p "${STATE}"
    stage_images || return 1
    "${BUILD}/e2e/local/kccl-node-agent" --node "${NODE}" --build-dir "${IMAGES}" \
        --state-dir "${STATE}/agent" --ready-file "${STATE}/ready" \
        --backoff-initial-ms 1000 --backoff-max-ms 10000 --mount-timeout 60 --keep-state \
        >"${STATE}/agent.log" 2>&1 &
    AGENT_PID=$!
    wait_until "the node agent" 20 test -f "${STATE}/ready" || { tail -20 "${STATE}/agent.log"; return 1; }
    log "node agent up (pid ${AGENT_PID}, log ${STATE}/agent.log)"
}

stop_agent() {
    [[ -n "${AGENT_PID}" ]] || return 0
    kill -TERM "${AGENT_PID}" 2>/dev/null || true
    for _ in $(seq 1 150); do
        kill -0 "${AGENT_PID}" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "${AGENT_PID}" 2>/dev/null; then
        log "the agent ignored SIGTERM for 30 s; SIGKILL"
        kill -KILL "${AGENT_PID}" 2>/dev/null || true
    fi
    wait "${AGENT_PID}" 2>/dev/null || true
    AGENT_PID=""
}

# ------------------------------------------------------------------ pods, files, timings
uid_of() { kc get pod -n "${NS}" "$1" -o jsonpath='{.metadata.uid}'; }
pod_dir() { echo "${STATE}/agent/pods/$(uid_of "$1")"; }
pods_of() { kc get pods -n "${NS}" -l "job-name=$1" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}'; }
rank_pod() {
    kc get pods -n "${NS}" -l "job-name=$1,batch.kubernetes.io/job-completion-index=$2" \
        --field-selector=status.phase!=Failed -o jsonpath='{.items[0].metadata.name}'
}
rank_pod_exists() { [[ -n "$(rank_pod "$1" "$2" 2>/dev/null)" ]]; }
cg() { kc get commgroup -n "${NS}" "$1" -o jsonpath="$2"; }
cg_phase_is() { [[ "$(cg "$1" '{.status.phase}')" == "$2" ]]; }
job_done() { [[ "$(kc get job -n "${NS}" "$1" -o jsonpath='{.status.succeeded}')" == "$2" ]]; }
# Done one way or the other (the waits below stop early when the Job has failed).
job_over() {
    job_done "$1" "$2" ||
        [[ "$(kc get job -n "${NS}" "$1" -o jsonpath='{.status.conditions[?(@.type=="Failed")].status}')" == True ]]
}
group_ready_or_job_over() { cg_phase_is "$1" Ready || job_over "$1" "$2"; }
none_left() { [[ -z "$("$@" 2>/dev/null)" ]]; }

# job NAME N POLICY HOLD_S [WRAP [BOOT_TIMEOUT_S]]: an Indexed Job of N ranks running kccl-demo
# with the kccl annotations only (the webhook injects the rest). WRAP: a shell line run before
# kccl-demo; BOOT_TIMEOUT_S: KCCL_BOOTSTRAP_TIMEOUT (default 10: a failed epoch ends soon).
job() {
    local name="$1" n="$2" policy="$3" hold="$4" wrap="${5:-}" boot="${6:-10}" cmd
    cmd="[\"kccl-demo\", \"--stamp\", \"--hold\", \"${hold}\"]"
    [[ -z "${wrap}" ]] || cmd="[\"sh\", \"-c\", \"${wrap}; exec kccl-demo --stamp --hold ${hold}\"]"
    kc apply -f - >/dev/null <<EOF
apiVersion: batch/v1
kind: Job
metadata: {name: ${name}, namespace: ${NS}}
spec:
  completionMode: Indexed
  completions: ${n}
  parallelism: ${n}
  backoffLimit: 20
  activeDeadlineSeconds: 300
  template:
    metadata:
      annotations: {kccl.io/group: ${name}, kccl.io/world-size: "${n}"}
    spec:
      restartPolicy: ${policy}
      terminationGracePeriodSeconds: 5
      containers:
      - name: demo
        image: ghcr.io/kccl/kccl-runtime-cpu:0.1.0
        command: ${cmd}
        env:
        - {name: KCCL_TRANSPORT, value: tcp}
        - {name: KCCL_BOOTSTRAP_TIMEOUT, value: "${boot}"}
        resources: {requests: {cpu: 10m, memory: 16Mi}}
        volumeMounts: [{name: tmp, mountPath: /tmp}]
      volumes: [{name: tmp, emptyDir: {}}]
EOF
}

commgroup() { # NAME N POLICY
    kc apply -f - >/dev/null <<EOF
apiVersion: kccl.io/v1alpha1
kind: CommGroup
metadata: {name: $1, namespace: ${NS}}
spec: {worldSize: $2, failurePolicy: $3, bootstrapTimeoutSeconds: 60}
EOF
}

delete_group() { # NAME: the Job, its pods and the CommGroup (the secret goes by GC)
    kc delete job -n "${NS}" "$1" --ignore-not-found --cascade=foreground --wait=false >/dev/null 2>&1 || true
    kc delete commgroup -n "${NS}" "$1" --ignore-not-found --wait=false >/dev/null 2>&1 || true
    wait_until "the pods of $1 to go" 60 none_left pods_of "$1" || true
}

# Demo exit codes: every rank's demo terminated with 0 (a restarted pod: its last run).
demos_ok() { # JOB N
    local bad=0 p code
    for p in $(pods_of "$1"); do
        code="$(kc get pod -n "${NS}" "${p}" -o jsonpath='{.status.containerStatuses[?(@.name=="demo")].state.terminated.exitCode}')"
        if [[ "$(kc get pod -n "${NS}" "${p}" -o jsonpath='{.status.phase}')" == Failed ]]; then
            continue # replaced by the Job
        fi
        [[ "${code}" == 0 ]] || { log "pod ${p}: demo exit code '${code}'"; bad=1; }
        grep -q "bootstrap done at" "$(pod_dir "${p}")/logs/demo.log" ||
            { log "pod ${p}: no bootstrap in its log"; bad=1; }
    done
    return "${bad}"
}

# Rendezvous figures of a job from the agent's timeline, the handoff files and the demos:
# prints "last_running_ms first_sidecar_ms handoffs_ms bootstrapped_ms last_sidecar_ms" (unix
# ms). A pod is Running once its sidecar has started and its app container runs.
rendezvous() {
    local job="$1" p d hmax=0 bmax=0 t
    for p in $(pods_of "${job}"); do
        d="$(pod_dir "${p}")"
        t=$(stat -c %.3Y "${d}/volumes/kccl-run/bootstrap" 2>/dev/null | tr -d . || echo 0)
        (( t > hmax )) && hmax=${t}
        t=$(awk '/bootstrap done at/ { sub(/\./, "", $7); print $7; exit }' "${d}/logs/demo.log" 2>/dev/null || echo 0)
        [[ -n "${t}" ]] && (( t > bmax )) && bmax=${t}
    done
    awk -v j="${NS}/${job}-" -v h="${hmax}" -v b="${bmax}" '
        index($2, j) == 1 && $4 == "Running" && $1 > last { last = $1 }
        index($2, j) == 1 && $4 == "running" && $5 == "kccl-sidecar" && (first == 0 || $1 < first) { first = $1 }
        index($2, j) == 1 && $4 == "running" && $5 == "kccl-sidecar" && $1 > lastsc { lastsc = $1 }
        END { printf "%.0f %.0f %.0f %.0f %.0f\n", last, first, h, b, lastsc }' "${STATE}/agent/timeline.log"
}

result() { # NAME PASS|FAIL DETAIL
    RESULTS+=("$(printf '%-3s %-4s %s' "$1" "$2" "$3")")
    [[ "$2" == PASS ]] || FAILED=1
    log "scenario $1: $2 $3"
}

# ------------------------------------------------------------------ install
T_INSTALL=""
ns_terminating() { [[ "$(kc get namespace "$1" -o jsonpath='{.status.phase}' 2>/dev/null)" == Terminating ]]; }
ns_usable() { ! ns_terminating "${NS}" && ! ns_terminating "${RELNS}"; }

install_chart() {
    # an earlier run's (or test's) namespaces may still be going away
    wait_until "namespaces ${NS} and ${RELNS} to finish terminating" 90 ns_usable || return 1
    kc create namespace "${NS}" >/dev/null 2>&1 || true
    T_INSTALL=$(now)
    if ! helm install kccl "${ROOT}/helm/kccl" -n "${RELNS}" --create-namespace \
        --set "workloadNamespaces={${NS}}" --wait --timeout 120s >"${STATE}/helm.log" 2>&1; then
        cat "${STATE}/helm.log" >&2
        return 1
    fi
    INSTALLED=1
    log "helm install: $(since "${T_INSTALL}") s (operator Ready, webhook configured)"
}

# ------------------------------------------------------------------ scenario a
scenario_a() {
    local g=e2e-a n=8 t_ready="" r
    job "${g}" "${n}" Never 3
    if wait_until "CommGroup ${g} Ready" 120 group_ready_or_job_over "${g}" "${n}" &&
        cg_phase_is "${g}" Ready; then
        t_ready=$(since "${T_INSTALL}")
    fi
    wait_until "Job ${g} to complete" 120 job_over "${g}" "${n}" || true
    local ok=1 detail events
    [[ -n "${t_ready}" ]] || { ok=0; detail+="CommGroup never Ready; "; }
    job_done "${g}" "${n}" || { ok=0; detail+="Job not complete; "; }
    demos_ok "${g}" || { ok=0; detail+="a demo failed; "; }
    grep -q "bootstrap: ${n} ranks" "$(pod_dir "$(rank_pod "${g}" 0)")/logs/demo.log" ||
        { ok=0; detail+="rank 0 printed no table; "; }
    events=$(kc get events -n "${NS}" --field-selector "involvedObject.kind=CommGroup,involvedObject.name=${g}" \
        -o jsonpath='{range .items[*]}{.reason}{" "}{end}')
    [[ "${events}" == *GroupReady* ]] || { ok=0; detail+="no GroupReady Event; "; }
    [[ "$(kc get secret -n "${NS}" "kccl-group-${g}" -o jsonpath='{.metadata.labels.kccl\.io/group}')" == "${g}" ]] ||
        { ok=0; detail+="no group secret; "; }
    read -r last first hand boot lastsc <<<"$(rendezvous "${g}")"
    r=$(awk -v l="${last}" -v f="${first}" -v h="${hand}" -v b="${boot}" -v s="${lastsc}" 'BEGIN {
        printf "install->Ready %s s; sidecars started (first->last) %.3f s; last sidecar started->all handoffs %.3f s; last pod Running->all handoffs %.3f s, ->all bootstrapped %.3f s",
        "'"${t_ready:-n/a}"'", (s - f) / 1e3, (h - s) / 1e3, (h - l) / 1e3, (b - l) / 1e3 }')
    log "a: ${r}; events: ${events}"
    delete_group "${g}"
    if [[ ${ok} -eq 1 ]]; then result a PASS "${r}"; else result a FAIL "${detail}${r}"; fi
}

# ------------------------------------------------------------------ scenario b
epoch_at_least() { local e; e=$(cg "$1" '{.status.epoch}'); [[ -n "${e}" && ${e} -ge $2 ]]; }
has_unique_id() { [[ -n "$(kc get pod -n "${NS}" "$1" -o jsonpath='{.metadata.annotations.kccl\.io/unique-id}')" ]]; }

epoch_handoffs() { # JOB EPOCH N: every live pod's handoff says KCCL_EPOCH=EPOCH
    local p c=0
    for p in $(kc get pods -n "${NS}" -l "job-name=$1" --field-selector=status.phase!=Failed -o name); do
        grep -qx "KCCL_EPOCH=$2" "$(pod_dir "${p#pod/}")/volumes/kccl-run/bootstrap" 2>/dev/null && c=$((c + 1))
    done
    [[ ${c} -ge $3 ]]
}

scenario_b_restart() {
    local g=e2e-b1 n=4 e p boots=0 ok=1 detail="" t0
    commgroup "${g}" "${n}" Restart
    job "${g}" "${n}" OnFailure 10
    wait_until "CommGroup ${g} Ready" 90 cg_phase_is "${g}" Ready || { ok=0; detail+="never Ready; "; }
    sleep 1
    p=$(rank_pod "${g}" 2)
    t0=$(now)
    log "b: deleting pod ${p} (rank 2) mid-run"
    kc delete pod -n "${NS}" "${p}" --wait=false >/dev/null
    wait_until "epoch bump" 30 epoch_at_least "${g}" 1 || { ok=0; detail+="epoch not bumped; "; }
    e=$(cg "${g}" '{.status.epoch}')
    wait_until "CommGroup ${g} Ready again" 90 cg_phase_is "${g}" Ready || { ok=0; detail+="not Ready again; "; }
    local t_reform
    t_reform=$(since "${t0}")
    wait_until "handoffs at epoch ${e}" 30 epoch_handoffs "${g}" "${e}" "${n}" || { ok=0; detail+="handoffs not at epoch ${e}; "; }
    wait_until "Job ${g} to complete" 90 job_over "${g}" "${n}" || true
    job_done "${g}" "${n}" || { ok=0; detail+="Job not complete; "; }
    for p in $(pods_of "${g}"); do
        boots=$((boots + $(grep -c "bootstrap done at" "$(pod_dir "${p}")/logs/demo.log" 2>/dev/null || echo 0)))
    done
    # every rank bootstraps again: n at the first epoch (the deleted pod's log went with it:
    # n - 1 here) and n at the new one
    [[ ${boots} -ge $((2 * n - 1)) ]] || { ok=0; detail+="only ${boots} bootstraps logged; "; }
    demos_ok "${g}" || { ok=0; detail+="a demo failed; "; }
    delete_group "${g}"
    local r="Restart: epoch ${e}, Ready again ${t_reform} s after the delete, ${boots} bootstraps"
    if [[ ${ok} -eq 1 ]]; then result b1 PASS "${r}"; else result b1 FAIL "${detail}${r}"; fi
}

scenario_b_fail() {
    local g=e2e-b2 n=4 p ok=1 detail="" cond
    commgroup "${g}" "${n}" Fail
    job "${g}" "${n}" OnFailure 10
    wait_until "CommGroup ${g} Ready" 90 cg_phase_is "${g}" Ready || { ok=0; detail+="never Ready; "; }
    p=$(rank_pod "${g}" 1)
    log "b: deleting pod ${p} (rank 1) of a failurePolicy Fail group"
    kc delete pod -n "${NS}" "${p}" --wait=false >/dev/null
    wait_until "CommGroup ${g} Failed" 30 cg_phase_is "${g}" Failed || { ok=0; detail+="phase not Failed; "; }
    cond=$(cg "${g}" '{range .status.conditions[?(@.type=="Ready")]}{.status}/{.reason}: {.message}{end}')
    [[ -n "${cond}" && "${cond}" == False/* ]] || { ok=0; detail+="no clear Ready condition; "; }
    delete_group "${g}"
    if [[ ${ok} -eq 1 ]]; then result b2 PASS "Fail: phase Failed, Ready=${cond}"; else result b2 FAIL "${detail}${cond}"; fi
}

# ------------------------------------------------------------------ scenario c
INTRUDER_NS=""
intruder_net() {
    local o1 o2 veth
    IFS=. read -r o1 o2 _ _ <<<"${KCCL_CP_BRIDGE_IP}"
    INTRUDER_NS="${KCCL_CP_NETNS_PREFIX}intruder"
    veth="ka${o2}-intr"
    ip netns del "${INTRUDER_NS}" 2>/dev/null || true
    ip link del "${veth}" 2>/dev/null || true
    ip netns add "${INTRUDER_NS}"
    ip link add "${veth}" type veth peer name eth0 netns "${INTRUDER_NS}"
    ip link set "${veth}" master "${KCCL_CP_BRIDGE}" up
    ip -n "${INTRUDER_NS}" addr add "${o1}.${o2}.99.1/16" dev eth0
    ip -n "${INTRUDER_NS}" link set eth0 up
    ip -n "${INTRUDER_NS}" link set lo up
}

intruder_down() {
    [[ -n "${INTRUDER_NS}" ]] || return 0
    local o2
    IFS=. read -r _ o2 _ _ <<<"${KCCL_CP_BRIDGE_IP}"
    ip netns del "${INTRUDER_NS}" 2>/dev/null || true
    ip link del "ka${o2}-intr" 2>/dev/null || true
    INTRUDER_NS=""
}

scenario_c() {
    local g=e2e-c n=4 p0 id ok=1 detail="" out rc=0
    # rank 3 starts 8 s late: the root is listening and waiting for it meanwhile
    # shellcheck disable=SC2016 # $JOB_COMPLETION_INDEX expands in the pod's shell
    job "${g}" "${n}" Never 1 'if [ \"$JOB_COMPLETION_INDEX\" = 3 ]; then sleep 8; fi'
    wait_until "rank 0's pod" 60 rank_pod_exists "${g}" 0 || true
    p0=$(rank_pod "${g}" 0)
    wait_until "rank 0's unique id" 60 has_unique_id "${p0}" ||
        { ok=0; detail+="no unique id; "; }
    id=$(kc get pod -n "${NS}" "${p0}" -o jsonpath='{.metadata.annotations.kccl\.io/unique-id}')
    wait_until "rank 0's demo" 30 grep -q " ${NS}/${p0} .* running demo" "${STATE}/agent/timeline.log" || true
    sleep 1
    intruder_net
    out=$(timeout 30 ip netns exec "${INTRUDER_NS}" "${BUILD}/tests/integration/e2e/kccl-e2e-intruder" \
        "${id}" "${n}" 3 5000 2>&1) || rc=$?
    intruder_down
    log "c: intruder (exit ${rc}): ${out//$'\n'/ | }"
    [[ ${rc} -eq 0 && "${out}" == *refused* ]] || { ok=0; detail+="intruder not refused (exit ${rc}); "; }
    wait_until "Job ${g} to complete" 90 job_over "${g}" "${n}" || true
    job_done "${g}" "${n}" || { ok=0; detail+="group did not complete; "; }
    local refusal
    refusal=$(grep -m1 "refused" "$(pod_dir "${p0}")/logs/demo.log" 2>/dev/null || true)
    [[ -n "${refusal}" ]] || { ok=0; detail+="the root logged no refusal; "; }
    demos_ok "${g}" || { ok=0; detail+="a demo failed; "; }
    delete_group "${g}"
    if [[ ${ok} -eq 1 ]]; then result c PASS "root logged: ${refusal##*kccl WARN BOOT }"; else result c FAIL "${detail}"; fi
}

# ------------------------------------------------------------------ scenario d
scenario_d() {
    local g=e2e-d n=${KCCL_E2E_RANKS:-64} ok=1 detail="" t0 r
    t0=$(now)
    job "${g}" "${n}" Never 2 "" 120
    if ! wait_until "CommGroup ${g} Ready" 300 group_ready_or_job_over "${g}" "${n}" ||
        ! cg_phase_is "${g}" Ready; then
        ok=0
        detail+="never Ready; "
    fi
    local t_ready
    t_ready=$(since "${t0}")
    wait_until "Job ${g} to complete" 300 job_over "${g}" "${n}" || true
    job_done "${g}" "${n}" || { ok=0; detail+="Job not complete; "; }
    read -r last first hand boot lastsc <<<"$(rendezvous "${g}")"
    r=$(awk -v n="${n}" -v l="${last}" -v f="${first}" -v h="${hand}" -v b="${boot}" -v s="${lastsc}" 'BEGIN {
        printf "%d pods: Job created->CommGroup Ready %s s; sidecars started (first->last) %.3f s; last sidecar started->all handoffs %.3f s; last pod Running->all handoffs %.3f s, ->all bootstrapped %.3f s",
        n, "'"${t_ready}"'", (s - f) / 1e3, (h - s) / 1e3, (h - l) / 1e3, (b - l) / 1e3 }')
    delete_group "${g}"
    if [[ ${ok} -eq 1 ]]; then result d PASS "${r}"; else result d FAIL "${detail}${r}"; fi
}

# ------------------------------------------------------------------ clean-up and checks
our_netns() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${KCCL_CP_NETNS_PREFIX}(ag-|intruder)" || true; }
agent_children() {
    if [[ -n "${AGENT_PID}" ]]; then pgrep -P "${AGENT_PID}" || true; fi
}

leftovers() {
    local what=()
    if kc get crd commgroups.kccl.io >/dev/null 2>&1; then
        [[ -z "$(kc get commgroups -A -o name 2>/dev/null)" ]] || what+=("CommGroups")
    fi
    [[ -z "$(kc get secrets -A -l kccl.io/group -o name 2>/dev/null)" ]] || what+=("group secrets")
    ! kc get mutatingwebhookconfiguration kccl-sidecar-injector >/dev/null 2>&1 || what+=("webhook configuration")
    [[ -z "$(kc get pods -n "${NS}" -o name 2>/dev/null)" ]] || what+=("pods in ${NS}")
    [[ -z "$(kc get pods -n "${RELNS}" -o name 2>/dev/null)" ]] || what+=("pods in ${RELNS}")
    [[ -z "$(agent_children)" ]] || what+=("container processes")
    [[ -z "$(our_netns)" ]] || what+=("network namespaces")
    if [[ ${#what[@]} -gt 0 ]]; then
        echo "${what[*]}"
        return 1
    fi
}

uninstall_and_check() {
    local g left t0
    for g in e2e-a e2e-b1 e2e-b2 e2e-c e2e-d; do delete_group "${g}" >/dev/null 2>&1 || true; done
    t0=$(now)
    if [[ ${INSTALLED} -eq 1 ]]; then
        helm uninstall kccl -n "${RELNS}" --wait --timeout 120s >>"${STATE}/helm.log" 2>&1 || log "helm uninstall failed"
        INSTALLED=0
    fi
    if wait_until "nothing left" 90 leftovers; then
        result clean PASS "helm uninstall + Job/CommGroup deletion left nothing ($(since "${t0}") s)"
    else
        left=$(leftovers || true)
        result clean FAIL "left behind: ${left}"
    fi
    # helm never deletes the CRDs of a chart's crds/ directory (by design); the test does.
    kc delete crd commgroups.kccl.io --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1 || true
    kc delete namespace "${NS}" "${RELNS}" --ignore-not-found --wait=false >/dev/null 2>&1 || true
}

on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ ${INSTALLED} -eq 1 ]]; then
        helm uninstall kccl -n "${RELNS}" --wait --timeout 60s >/dev/null 2>&1 || true
        kc delete crd commgroups.kccl.io --ignore-not-found --wait=false >/dev/null 2>&1 || true
    fi
    kc delete namespace "${NS}" "${RELNS}" --ignore-not-found --wait=false >/dev/null 2>&1 || true
    intruder_down
    stop_agent
    rm -rf "${IMAGES}"
    if [[ -n "$(our_netns)" ]]; then
        log "network namespaces left after the agent stopped: $(our_netns | tr '\n' ' ')"
        rc=1
    fi
    if kc get node "${NODE}" >/dev/null 2>&1; then
        log "the agent did not delete its Node"
        rc=1
    fi
    if [[ "${KCCL_E2E_KEEP:-0}" == 1 || ${FAILED} -ne 0 ]]; then
        log "kept ${STATE} (agent log, pods' logs) for a look"
        if [[ "${KCCL_E2E_KEEP:-0}" != 1 ]]; then tail -n 30 "${STATE}/agent.log" >&2 || true; fi
    else
        rm -rf "${STATE}"
    fi
    echo
    echo "=============== e2e/local summary ($(since "${T_START}") s) ==============="
    printf '%s\n' "${RESULTS[@]}"
    [[ ${FAILED} -eq 0 && ${rc} -eq 0 ]] && exit 0
    exit 1
}

trap on_exit EXIT
trap 'exit 130' INT TERM
mkdir -p "${STATE}"
start_agent
install_chart || { result install FAIL "helm install (see above)"; exit 1; }
for s in "${SCENARIOS[@]}"; do
    case "${s}" in
        a) scenario_a ;;
        b) scenario_b_restart; scenario_b_fail ;;
        c) scenario_c ;;
        d) scenario_d ;;
        *) log "unknown scenario ${s}"; FAILED=1 ;;
    esac
done
uninstall_and_check

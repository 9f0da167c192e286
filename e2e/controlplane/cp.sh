#!/usr/bin/env bash
# A real, local Kubernetes control plane for tests: etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler as plain processes, plus a Linux
# bridge for pod network namespaces. No kubelet (the e2e node agent stands in).
#
# Usage: cp.sh up|down|status|env
#
#   up      build (once, cached) the binaries, generate certificates, create the
#           bridge, start the components, wait until ready (deadline), print time
#   down    stop everything up started, delete the bridge and every network
#           namespace named ${KCCL_CP_NETNS_PREFIX:-kccl-}*, unmount what lies
#           under the state directory, remove the state directory. Idempotent.
#   status  print what runs and the apiserver URL; exit 0 only if healthy
#   env     print export lines for eval: KUBECONFIG, KCCL_CP_APISERVER, ...
#
# Environment (defaults in brackets):
#   KCCL_CP_DIR            state directory                    [/tmp/kccl-cp]
#   KCCL_CACHE_DIR         binary cache (see build.sh)        [~/.cache/kccl]
#   KCCL_CP_BRIDGE         bridge name                        [kccl-br0]
#   KCCL_CP_BRIDGE_CIDR    bridge address/prefix (pod net)    [10.244.0.1/16]
#   KCCL_CP_NETNS_PREFIX   netns names that down deletes      [kccl-]
#   KCCL_CP_APISERVER_PORT apiserver port on the bridge IP    [6443, else a free one]
#   KCCL_CP_TIMEOUT        seconds up waits for readiness     [60]
#   KCCL_CP_ETCD_TMPFS     1: etcd data on a tmpfs mount      [1]
#
# Everything stays on this machine: the apiserver listens on the bridge address
# only, etcd and the other components on 127.0.0.1; no NAT, no routes and no
# forwarding settings are touched.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "${HERE}/versions.env"

STATE="${KCCL_CP_DIR:-/tmp/kccl-cp}"
STATE="${STATE%/}"
BRIDGE="${KCCL_CP_BRIDGE:-kccl-br0}"
BRIDGE_CIDR="${KCCL_CP_BRIDGE_CIDR:-10.244.0.1/16}"
BRIDGE_IP="${BRIDGE_CIDR%/*}"
NETNS_PREFIX="${KCCL_CP_NETNS_PREFIX:-kccl-}"
TIMEOUT="${KCCL_CP_TIMEOUT:-60}"
ETCD_TMPFS="${KCCL_CP_ETCD_TMPFS:-1}"
SERVICE_CIDR="10.96.0.0/16"
SERVICE_IP="10.96.0.1"
SA_ISSUER="https://kubernetes.default.svc.cluster.local"
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler)

PKI="${STATE}/pki"
LOGS="${STATE}/logs"
RUN="${STATE}/run"
CPENV="${STATE}/cp.env"

log() { printf '[cp %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

priv() {
    if [[ ${EUID} -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
    else die "needs root for: $*"
    fi
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ------------------------------------------------------------------ helpers
# A TCP port nobody listens on (any address), not in the given exclusion list.
free_port() {
    local p used
    used="$(ss -Htln | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u)"
    for _ in $(seq 1 200); do
        p=$(( 20000 + RANDOM % 12000 ))
        if ! grep -qx "${p}" <<<"${used}" && [[ " $* " != *" ${p} "* ]]; then
            echo "${p}"
            return 0
        fi
    done
    die "no free TCP port found"
}

port_in_use() {
    ss -Htln | awk '{ n = split($4, a, ":"); print a[n] }' | grep -qx "$1"
}

pid_of() {
    local f="${RUN}/$1.pid"
    [[ -f "${f}" ]] && cat "${f}"
}

# True if pid $1 is alive and its command line mentions the state directory
# (guards against killing an unrelated process that reused the pid).
ours_alive() {
    local pid="$1"
    [[ -n "${pid}" && -r "/proc/${pid}/cmdline" ]] || return 1
    tr '\0' ' ' <"/proc/${pid}/cmdline" | grep -qF -- "${STATE}/"
}

component_alive() { ours_alive "$(pid_of "$1" || true)"; }

show_log() {
    local c="$1" f="${LOGS}/$1.log"
    if [[ -f "${f}" ]]; then
        printf '\n----- last 40 lines of %s -----\n' "${f}" >&2
        tail -n 40 "${f}" >&2
        printf -- '----- end of %s -----\n\n' "${c}" >&2
    fi
}

bin_dir() { "${HERE}/build.sh" --print-bin-dir; }

# ------------------------------------------------------------------ certificates
# gen_cert NAME SUBJECT EXTENSIONS  -> ${PKI}/NAME.{key,crt}, signed by the CA
gen_cert() {
    local name="$1" subj="$2" ext="$3"
    openssl ecparam -name prime256v1 -genkey -noout -out "${PKI}/${name}.key" 2>/dev/null
    openssl req -new -key "${PKI}/${name}.key" -subj "${subj}" -out "${PKI}/${name}.csr" 2>/dev/null
    printf '%s\n' "${ext}" >"${PKI}/${name}.ext"
    openssl x509 -req -in "${PKI}/${name}.csr" -CA "${PKI}/ca.crt" -CAkey "${PKI}/ca.key" \
        -set_serial "0x$(openssl rand -hex 16)" -days 365 -sha256 \
        -extfile "${PKI}/${name}.ext" -out "${PKI}/${name}.crt" 2>/dev/null
    rm -f "${PKI}/${name}.csr" "${PKI}/${name}.ext"
}

gen_pki() {
    mkdir -p "${PKI}"
    chmod 700 "${PKI}"
    openssl ecparam -name prime256v1 -genkey -noout -out "${PKI}/ca.key" 2>/dev/null
    openssl req -x509 -new -key "${PKI}/ca.key" -subj "/CN=kccl-test-ca" -days 3650 -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
        -out "${PKI}/ca.crt" 2>/dev/null

    local client="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
    gen_cert apiserver "/CN=kube-apiserver" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:${BRIDGE_IP},IP:${SERVICE_IP},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    gen_cert admin "/O=system:masters/CN=kccl-admin" "${client}"
    gen_cert controller-manager "/CN=system:kube-controller-manager" "${client}"
    gen_cert scheduler "/CN=system:kube-scheduler" "${client}"

    # Service-account token signing key pair (RSA).
    openssl genrsa -out "${PKI}/sa.key" 2048 2>/dev/null
    openssl rsa -in "${PKI}/sa.key" -pubout -out "${PKI}/sa.pub" 2>/dev/null
}

# write_kubeconfig FILE USER CERTNAME
write_kubeconfig() {
    local file="$1" user="$2" cert="$3"
    cat >"${file}" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kccl
  cluster:
    server: https://${BRIDGE_IP}:${APISERVER_PORT}
    certificate-authority-data: $(base64 -w0 "${PKI}/ca.crt")
users:
- name: ${user}
  user:
    client-certificate-data: $(base64 -w0 "${PKI}/${cert}.crt")
    client-key-data: $(base64 -w0 "${PKI}/${cert}.key")
contexts:
- name: kccl
  context:
    cluster: kccl
    user: ${user}
    namespace: default
current-context: kccl
EOF
    chmod 600 "${file}"
}

# ------------------------------------------------------------------ processes
# start NAME BINARY ARGS...  (own session, so a Ctrl-C of the caller does not
# reach it; pid file in ${RUN}; stdout+stderr to ${LOGS}/NAME.log)
start() {
    local name="$1"; shift
    setsid "$@" </dev/null >"${LOGS}/${name}.log" 2>&1 8<&- &
    echo $! >"${RUN}/${name}.pid"
}

stop_pid() {
    local pid="$1" name="$2"
    ours_alive "${pid}" || return 0
    kill -TERM "${pid}" 2>/dev/null || true
    for _ in $(seq 1 100); do
        ours_alive "${pid}" || return 0
        sleep 0.1
    done
    log "${name} (pid ${pid}) ignored SIGTERM for 10 s; SIGKILL"
    kill -KILL "${pid}" 2>/dev/null || true
    for _ in $(seq 1 50); do
        ours_alive "${pid}" || return 0
        sleep 0.1
    done
    log "WARNING: ${name} (pid ${pid}) still alive after SIGKILL"
}

# Any process whose binary is one of ours and whose command line names the
# state directory (covers lost pid files).
stray_pids() {
    local p exe
    for p in /proc/[0-9]*; do
        p="${p#/proc/}"
        [[ "${p}" != "$$" ]] || continue
        exe="$(readlink "/proc/${p}/exe" 2>/dev/null || true)"
        case "${exe##*/}" in
            etcd|kube-apiserver|kube-controller-manager|kube-scheduler) ;;
            *) continue ;;
        esac
        ours_alive "${p}" && echo "${p}"
    done
    return 0
}

# ------------------------------------------------------------------ health
# curl_api PATH [CURL ARGS...]: a request as the admin user
curl_api() {
    local path="$1"; shift
    curl -sS --max-time 3 --cacert "${PKI}/ca.crt" --cert "${PKI}/admin.crt" \
        --key "${PKI}/admin.key" "$@" "https://${BRIDGE_IP}:${APISERVER_PORT}${path}"
}

load_env() {
    [[ -f "${CPENV}" ]] || return 1
    # shellcheck disable=SC1090
    source "${CPENV}"
}

# ------------------------------------------------------------------ network
bridge_owner() { cat "/sys/class/net/$1/ifalias" 2>/dev/null || true; }

# State directories of the OTHER control planes running on this machine. Each
# one names itself in its bridge's alias ("kccl-cp:<state dir>"); it counts as
# running while its kube-apiserver pid is alive and mentions that directory.
other_live_states() {
    local f owner st pid
    for f in /sys/class/net/*/ifalias; do
        owner="$(cat "${f}" 2>/dev/null || true)"
        [[ "${owner}" == kccl-cp:* ]] || continue
        st="${owner#kccl-cp:}"
        [[ "${st}" != "${STATE}" && -f "${st}/run/kube-apiserver.pid" ]] || continue
        pid="$(cat "${st}/run/kube-apiserver.pid")"
        [[ -r "/proc/${pid}/cmdline" ]] || continue
        tr '\0' ' ' <"/proc/${pid}/cmdline" | grep -qF -- "${st}/" || continue
        echo "${st}"
    done
    return 0
}

# other_setting STATE_DIR KEY: a value from another control plane's cp.env
other_setting() {
    (
        # shellcheck disable=SC1091
        source "$1/cp.env" 2>/dev/null || exit 0
        printf '%s\n' "${!2:-}"
    )
}

# The other running control plane that shares our netns prefix, if any.
netns_prefix_user() {
    local st
    for st in $(other_live_states); do
        if [[ "$(other_setting "${st}" NETNS_PREFIX)" == "${NETNS_PREFIX}" ]]; then
            echo "${st}"
            return 0
        fi
    done
    return 0
}

setup_bridge() {
    local st
    for st in $(other_live_states); do
        if [[ "$(other_setting "${st}" BRIDGE)" == "${BRIDGE}" ]] \
            || [[ "$(other_setting "${st}" BRIDGE_IP)" == "${BRIDGE_IP}" ]] \
            || [[ "$(other_setting "${st}" NETNS_PREFIX)" == "${NETNS_PREFIX}" ]]; then
            die "the control plane running in ${st} uses the same bridge, address or netns prefix; start a second one with other KCCL_CP_BRIDGE, KCCL_CP_BRIDGE_CIDR and KCCL_CP_NETNS_PREFIX"
        fi
    done
    if [[ -d "/sys/class/net/${BRIDGE}" ]]; then
        log "removing stale bridge ${BRIDGE} (owner: $(bridge_owner "${BRIDGE}" || true))"
        priv ip link del "${BRIDGE}"
    fi
    if ip -o -4 addr show | awk '{print $4}' | grep -q "^${BRIDGE_IP}/"; then
        die "address ${BRIDGE_IP} is already configured on another interface; set KCCL_CP_BRIDGE_CIDR"
    fi
    priv ip link add "${BRIDGE}" type bridge
    priv ip link set "${BRIDGE}" alias "kccl-cp:${STATE}"
    priv ip addr add "${BRIDGE_CIDR}" dev "${BRIDGE}"
    priv ip link set "${BRIDGE}" up
}

teardown_network() {
    local ns pids user
    user="$(netns_prefix_user)"
    # Network namespaces of test pods (and whatever still runs inside them),
    # unless they belong to another running control plane with the same prefix.
    if [[ -n "${user}" ]]; then
        log "netns ${NETNS_PREFIX}* belong to the running control plane in ${user}; leaving them"
    fi
    while read -r ns _; do
        [[ -z "${user}" && -n "${ns}" && "${ns}" == "${NETNS_PREFIX}"* ]] || continue
        pids="$(priv ip netns pids "${ns}" 2>/dev/null || true)"
        if [[ -n "${pids}" ]]; then
            log "netns ${ns}: stopping processes ${pids//$'\n'/ }"
            # shellcheck disable=SC2086
            priv kill -TERM ${pids} 2>/dev/null || true
            for _ in $(seq 1 30); do
                [[ -z "$(priv ip netns pids "${ns}" 2>/dev/null || true)" ]] && break
                sleep 0.1
            done
            pids="$(priv ip netns pids "${ns}" 2>/dev/null || true)"
            # shellcheck disable=SC2086
            [[ -z "${pids}" ]] || priv kill -KILL ${pids} 2>/dev/null || true
        fi
        priv ip netns delete "${ns}" 2>/dev/null || log "WARNING: could not delete netns ${ns}"
    done < <(ip netns list 2>/dev/null || true)

    if [[ -d "/sys/class/net/${BRIDGE}" ]]; then
        local owner other
        owner="$(bridge_owner "${BRIDGE}")"
        other="${owner#kccl-cp:}"
        if [[ "${owner}" == kccl-cp:* && "${other}" != "${STATE}" ]] \
            && grep -qxF -- "${other}" <(other_live_states); then
            log "bridge ${BRIDGE} belongs to the running control plane in ${other}; leaving it"
        else
            # Host ends of pod veths still attached to the bridge.
            local l
            while read -r l; do
                if [[ -n "${l}" ]]; then priv ip link del "${l}" 2>/dev/null || true; fi
            done < <(ip -o link show master "${BRIDGE}" 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }')
            priv ip link del "${BRIDGE}"
        fi
    fi
}

unmount_under_state() {
    local m
    # Deepest first. Field 5 of mountinfo is the mount point.
    while read -r m; do
        [[ -n "${m}" ]] || continue
        priv umount "${m}" 2>/dev/null || priv umount -l "${m}" || log "WARNING: could not unmount ${m}"
    done < <(awk -v s="${STATE}" '$5 == s || index($5, s "/") == 1 { print length($5) " " $5 }' /proc/self/mountinfo \
             | sort -rn | cut -d' ' -f2-)
}

# ------------------------------------------------------------------ commands
cmd_down() { stop_all remove; }

# stop_all keep|remove: with "keep", the state directory (logs) is left in place.
stop_all() {
    local keep="$1" c pid
    if [[ -d "${RUN}" ]]; then
        for c in kube-scheduler kube-controller-manager kube-apiserver etcd; do
            pid="$(pid_of "${c}" || true)"
            [[ -n "${pid}" ]] && stop_pid "${pid}" "${c}"
        done
    fi
    for pid in $(stray_pids); do
        stop_pid "${pid}" "$(readlink "/proc/${pid}/exe" 2>/dev/null || echo process)"
    done
    load_env 2>/dev/null || true     # bridge/netns names used by that run
    teardown_network
    unmount_under_state
    if [[ "${keep}" == keep ]]; then
        log "stopped; logs kept in ${LOGS} (cp.sh down removes them)"
        return 0
    fi
    if [[ -e "${STATE}" ]]; then
        rm -rf --one-file-system "${STATE}"
    fi
    log "down: nothing left of ${STATE}"
}

healthy() {
    load_env || return 1
    local c
    for c in "${COMPONENTS[@]}"; do component_alive "${c}" || return 1; done
    [[ -d "/sys/class/net/${BRIDGE}" ]] || return 1
    [[ "$(curl_api /readyz 2>/dev/null)" == "ok" ]]
}

cmd_status() {
    if ! load_env; then
        echo "control plane: not running (no ${CPENV})"
        return 1
    fi
    local c ok=0 pid h
    echo "state dir:  ${STATE}"
    echo "apiserver:  ${KCCL_CP_APISERVER}"
    echo "kubeconfig: ${STATE}/admin.kubeconfig"
    for c in "${COMPONENTS[@]}"; do
        pid="$(pid_of "${c}" || true)"
        if component_alive "${c}"; then
            printf '  %-24s running (pid %s)\n' "${c}" "${pid}"
        else
            printf '  %-24s NOT running\n' "${c}"
            ok=1
        fi
    done
    # Health endpoints are asked only of processes that run (without the
    # bridge, the bridge address would be routed off this machine).
    if component_alive kube-apiserver && [[ -d "/sys/class/net/${BRIDGE}" ]]; then
        h="$(curl_api /readyz 2>&1 | head -n 1 || true)"
    else
        h="(not asked: kube-apiserver or bridge missing)"
    fi
    printf '  %-24s %s\n' "/readyz" "${h}"
    [[ "${h}" == "ok" ]] || ok=1
    for c in kube-controller-manager:"${KCM_PORT}" kube-scheduler:"${SCHED_PORT}"; do
        if component_alive "${c%%:*}"; then
            h="$(curl -sk --max-time 3 "https://127.0.0.1:${c#*:}/healthz" 2>&1 | head -n 1 || true)"
        else
            h="(not running)"
        fi
        printf '  %-24s %s\n' "${c%%:*} /healthz" "${h}"
        [[ "${h}" == "ok" ]] || ok=1
    done
    if [[ -d "/sys/class/net/${BRIDGE}" ]]; then
        printf '  %-24s %s %s\n' "bridge" "${BRIDGE}" "${BRIDGE_CIDR}"
    else
        printf '  %-24s %s missing\n' "bridge" "${BRIDGE}"
        ok=1
    fi
    if [[ ${ok} -eq 0 ]]; then echo "healthy"; else echo "UNHEALTHY"; fi
    return "${ok}"
}

cmd_env() {
    load_env || die "control plane not up (no ${CPENV}); run: $0 up"
    local k
    for k in KUBECONFIG KCCL_CP_DIR KCCL_CP_APISERVER KCCL_CP_CA KCCL_CP_BIN KCCL_CP_K8S_VERSION \
             KCCL_CP_BRIDGE KCCL_CP_BRIDGE_IP KCCL_CP_BRIDGE_CIDR KCCL_CP_POD_CIDR \
             KCCL_CP_NETNS_PREFIX KCCL_CP_SERVICE_CIDR KCCL_CP_AUDIT_LOG; do
        printf 'export %s=%q\n' "${k}" "${!k}"
    done
    # shellcheck disable=SC2016 # ${PATH} is meant to expand where the output is eval-ed
    printf 'export PATH=%q:"${PATH}"\n' "${KCCL_CP_BIN}"
}

wait_for() {  # wait_for DESCRIPTION DEADLINE_EPOCH COMPONENT CMD...
    local what="$1" deadline="$2" comp="$3"; shift 3
    until "$@" >/dev/null 2>&1; do
        local c
        for c in "${COMPONENTS[@]}"; do
            if [[ -f "${RUN}/${c}.pid" ]] && ! component_alive "${c}"; then
                show_log "${c}"
                die "${c} exited while waiting for ${what}"
            fi
        done
        if (( $(date +%s) >= deadline )); then
            show_log "${comp}"
            die "timed out after ${TIMEOUT} s waiting for ${what}"
        fi
        sleep 0.2
    done
}

up_exit() {
    local rc=$?
    if [[ ${rc} -ne 0 ]]; then
        log "up failed; stopping what was started"
        stop_all keep || true
    fi
}

readyz_ok() { [[ "$(curl_api /readyz)" == "ok" ]]; }

cmd_up() {
    local t0 bin
    t0="$(now)"
    if healthy; then
        log "already up and healthy (${STATE}); nothing to do"
        return 0
    fi
    if [[ -e "${STATE}" ]]; then
        log "leftovers in ${STATE}; cleaning up first"
        cmd_down
    fi

    "${HERE}/build.sh" 8<&-           # no-op (seconds) once the binaries are cached
    bin="$(bin_dir)"
    local b
    for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
        [[ -x "${bin}/${b}" ]] || die "missing ${bin}/${b}; run ${HERE}/build.sh"
    done
    command -v etcd >/dev/null || die "etcd not installed; run ${HERE}/build.sh"
    for b in openssl ip ss curl setsid; do
        command -v "${b}" >/dev/null || die "${b} not found"
    done

    mkdir -p "${STATE}" "${LOGS}" "${RUN}"
    # From here on, a failure tears down what was started.
    trap up_exit EXIT
    trap 'exit 130' INT TERM

    # Ports: etcd and component health ports on 127.0.0.1 chosen free; the
    # apiserver on the bridge IP at 6443 unless that is taken.
    local etcd_client etcd_peer
    APISERVER_PORT="${KCCL_CP_APISERVER_PORT:-6443}"
    if [[ -z "${KCCL_CP_APISERVER_PORT:-}" ]] && port_in_use "${APISERVER_PORT}"; then
        APISERVER_PORT="$(free_port)"
        log "port 6443 is taken; apiserver uses ${APISERVER_PORT}"
    fi
    etcd_client="$(free_port "${APISERVER_PORT}")"
    etcd_peer="$(free_port "${APISERVER_PORT}" "${etcd_client}")"
    KCM_PORT="$(free_port "${APISERVER_PORT}" "${etcd_client}" "${etcd_peer}")"
    SCHED_PORT="$(free_port "${APISERVER_PORT}" "${etcd_client}" "${etcd_peer}" "${KCM_PORT}")"

    setup_bridge
    gen_pki
    local pod_cidr
    pod_cidr="$(ip -o -4 route show dev "${BRIDGE}" scope link | awk '{print $1; exit}')"
    pod_cidr="${pod_cidr:-${BRIDGE_CIDR}}"

    cat >"${CPENV}" <<EOF
# written by cp.sh up; read by cp.sh status|env|down
KUBECONFIG=${STATE}/admin.kubeconfig
KCCL_CP_DIR=${STATE}
KCCL_CP_APISERVER=https://${BRIDGE_IP}:${APISERVER_PORT}
KCCL_CP_CA=${PKI}/ca.crt
KCCL_CP_BIN=${bin}
KCCL_CP_K8S_VERSION=${KCCL_K8S_VERSION}
KCCL_CP_BRIDGE=${BRIDGE}
KCCL_CP_BRIDGE_IP=${BRIDGE_IP}
KCCL_CP_BRIDGE_CIDR=${BRIDGE_CIDR}
KCCL_CP_POD_CIDR=${pod_cidr}
KCCL_CP_NETNS_PREFIX=${NETNS_PREFIX}
KCCL_CP_SERVICE_CIDR=${SERVICE_CIDR}
KCCL_CP_AUDIT_LOG=${LOGS}/audit.log
BRIDGE=${BRIDGE}
BRIDGE_IP=${BRIDGE_IP}
BRIDGE_CIDR=${BRIDGE_CIDR}
NETNS_PREFIX=${NETNS_PREFIX}
APISERVER_PORT=${APISERVER_PORT}
ETCD_CLIENT_PORT=${etcd_client}
KCM_PORT=${KCM_PORT}
SCHED_PORT=${SCHED_PORT}
EOF

    write_kubeconfig "${STATE}/admin.kubeconfig" kccl-admin admin
    write_kubeconfig "${STATE}/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
    write_kubeconfig "${STATE}/scheduler.kubeconfig" system:kube-scheduler scheduler

    # Audit: one Metadata-level event per request (RequestReceived omitted, so
    # a plain request logs once at ResponseComplete; a watch logs ResponseStarted
    # and ResponseComplete). Count requests by distinct auditID.
    cat >"${STATE}/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages:
- RequestReceived
rules:
- level: Metadata
EOF

    # ---- etcd
    mkdir -p "${STATE}/etcd"
    if [[ "${ETCD_TMPFS}" == "1" ]]; then
        priv mount -t tmpfs -o size=1g,mode=0700 kccl-etcd "${STATE}/etcd"
    fi
    start etcd etcd --name kccl \
        --data-dir "${STATE}/etcd/data" \
        --listen-client-urls "http://127.0.0.1:${etcd_client}" \
        --advertise-client-urls "http://127.0.0.1:${etcd_client}" \
        --listen-peer-urls "http://127.0.0.1:${etcd_peer}" \
        --initial-advertise-peer-urls "http://127.0.0.1:${etcd_peer}" \
        --initial-cluster "kccl=http://127.0.0.1:${etcd_peer}" \
        --initial-cluster-state new \
        --logger zap --log-outputs stderr
    local deadline=$(( $(date +%s) + TIMEOUT ))
    wait_for "etcd health" "${deadline}" etcd \
        curl -sf --max-time 2 "http://127.0.0.1:${etcd_client}/health"
    log "etcd ready at $(elapsed "${t0}") s"

    # ---- kube-apiserver
    start kube-apiserver "${bin}/kube-apiserver" \
        --etcd-servers "http://127.0.0.1:${etcd_client}" \
        --cert-dir "${PKI}" \
        --tls-cert-file "${PKI}/apiserver.crt" \
        --tls-private-key-file "${PKI}/apiserver.key" \
        --client-ca-file "${PKI}/ca.crt" \
        --bind-address "${BRIDGE_IP}" \
        --advertise-address "${BRIDGE_IP}" \
        --secure-port "${APISERVER_PORT}" \
        --authorization-mode Node,RBAC \
        --service-cluster-ip-range "${SERVICE_CIDR}" \
        --service-account-issuer "${SA_ISSUER}" \
        --service-account-key-file "${PKI}/sa.pub" \
        --service-account-signing-key-file "${PKI}/sa.key" \
        --allow-privileged=true \
        --audit-policy-file "${STATE}/audit-policy.yaml" \
        --audit-log-path "${LOGS}/audit.log" \
        --audit-log-format json \
        --audit-log-mode blocking \
        --audit-log-maxsize 0 \
        --profiling=false \
        --enable-aggregator-routing=true
    wait_for "kube-apiserver /readyz" "${deadline}" kube-apiserver readyz_ok
    log "kube-apiserver ready at $(elapsed "${t0}") s"

    # ---- controller manager and scheduler
    start kube-controller-manager "${bin}/kube-controller-manager" \
        --kubeconfig "${STATE}/controller-manager.kubeconfig" \
        --authentication-kubeconfig "${STATE}/controller-manager.kubeconfig" \
        --authorization-kubeconfig "${STATE}/controller-manager.kubeconfig" \
        --use-service-account-credentials=true \
        --root-ca-file "${PKI}/ca.crt" \
        --service-account-private-key-file "${PKI}/sa.key" \
        --cluster-signing-cert-file "${PKI}/ca.crt" \
        --cluster-signing-key-file "${PKI}/ca.key" \
        --service-cluster-ip-range "${SERVICE_CIDR}" \
        --leader-elect=false \
        --kube-api-qps 200 --kube-api-burst 400 \
        --bind-address 127.0.0.1 \
        --secure-port "${KCM_PORT}" \
        --cert-dir "${STATE}/kcm-serving"
    start kube-scheduler "${bin}/kube-scheduler" \
        --kubeconfig "${STATE}/scheduler.kubeconfig" \
        --authentication-kubeconfig "${STATE}/scheduler.kubeconfig" \
        --authorization-kubeconfig "${STATE}/scheduler.kubeconfig" \
        --leader-elect=false \
        --kube-api-qps 200 --kube-api-burst 400 \
        --bind-address 127.0.0.1 \
        --secure-port "${SCHED_PORT}" \
        --cert-dir "${STATE}/scheduler-serving"

    wait_for "the default ServiceAccount" "${deadline}" kube-controller-manager \
        curl_api /api/v1/namespaces/default/serviceaccounts/default --fail
    wait_for "kube-scheduler /healthz" "${deadline}" kube-scheduler \
        curl -skf --max-time 2 "https://127.0.0.1:${SCHED_PORT}/healthz"
    wait_for "kube-controller-manager /healthz" "${deadline}" kube-controller-manager \
        curl -skf --max-time 2 "https://127.0.0.1:${KCM_PORT}/healthz"

    trap - EXIT INT TERM
    log "up in $(elapsed "${t0}") s: apiserver https://${BRIDGE_IP}:${APISERVER_PORT} (Kubernetes ${KCCL_K8S_VERSION})"
    log "use it with: eval \"\$(${HERE}/cp.sh env)\""
}

# up and down of any state directory run one at a time (lock on this script;
# components started by up do not inherit the descriptor).
serialize() {
    exec 8<"${BASH_SOURCE[0]}"
    if ! flock -n 8; then
        log "another cp.sh up/down is running; waiting (at most 900 s)"
        flock -w 900 8 || die "timed out waiting for the other cp.sh"
    fi
}

main() {
    case "${1:-}" in
        up) serialize; cmd_up ;;
        down) serialize; cmd_down ;;
        status) cmd_status ;;
        env) cmd_env ;;
        -h|--help|help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" ;;
        *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
    esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then main "$@"; fi

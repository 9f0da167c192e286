#!/usr/bin/env bash
# Stops and restarts a kube-apiserver of the local control plane
# (e2e/controlplane/cp.sh) for the watch-survives-a-restart test. cp.sh has no
# restart command, so this reads what cp.sh records: the pid file
# $KCCL_CP_DIR/run/kube-apiserver.pid and that process's command line.
#
#   apiserver_ctl.sh private-start DIR   start a PRIVATE apiserver: the same binary and
#                                        flags as the running one, the same etcd, but on
#                                        127.0.0.1:<free port>, its own audit log, no
#                                        endpoint reconciler. Prints the port. Other
#                                        users of the control plane are not disturbed.
#   apiserver_ctl.sh private-kill DIR    SIGKILL it (a crash, not a graceful stop)
#   apiserver_ctl.sh private-restart DIR start it again with the same command line
#   apiserver_ctl.sh private-stop DIR    SIGTERM it and forget it
#   apiserver_ctl.sh main-restart        SIGTERM cp.sh's own apiserver and start it again
#                                        with its recorded command line (disturbs every
#                                        user of the control plane for ~10 s)
#
# Every start waits (KCCL_CP_TIMEOUT, default 60 s) for /readyz.
set -euo pipefail

STATE="${KCCL_CP_DIR:-/tmp/kccl-cp}"
STATE="${STATE%/}"
PKI="${STATE}/pki"
TIMEOUT="${KCCL_CP_TIMEOUT:-60}"

die() { echo "apiserver_ctl: $*" >&2; exit 1; }

main_pid() {
    local f="${STATE}/run/kube-apiserver.pid"
    [[ -f "${f}" ]] || die "no ${f}: is the control plane up (e2e/controlplane/cp.sh up)?"
    cat "${f}"
}

# read_cmdline PID -> the global array CMD
read_cmdline() {
    [[ -r "/proc/$1/cmdline" ]] || die "process $1 is not running"
    mapfile -d '' -t CMD <"/proc/$1/cmdline"
}

free_port() {
    local p used
    used="$(ss -Htln | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u)"
    for _ in $(seq 1 200); do
        p=$(( 32000 + RANDOM % 8000 ))
        grep -qx "${p}" <<<"${used}" || { echo "${p}"; return 0; }
    done
    die "no free port"
}

wait_ready() {  # wait_ready URL PID
    local deadline=$(( $(date +%s) + TIMEOUT ))
    until [[ "$(curl -s --max-time 2 --cacert "${PKI}/ca.crt" --cert "${PKI}/admin.crt" \
                 --key "${PKI}/admin.key" "$1/readyz" 2>/dev/null)" == "ok" ]]; do
        [[ -d "/proc/$2" ]] || die "apiserver (pid $2) exited; see its log"
        (( $(date +%s) < deadline )) || die "apiserver at $1 not ready after ${TIMEOUT} s"
        sleep 0.2
    done
}

# launch LOG ARGS...: own session, output appended to LOG; prints the pid
launch() {
    local log="$1"; shift
    setsid "$@" </dev/null >>"${log}" 2>&1 &
    echo $!
}

private_start() {
    local dir="$1" port
    mkdir -p "${dir}"
    read_cmdline "$(main_pid)"
    port="$(free_port)"
    local -a args=("${CMD[0]}")
    local i=1 skip=0
    for ((i = 1; i < ${#CMD[@]}; i++)); do
        if ((skip)); then skip=0; continue; fi
        case "${CMD[i]}" in
            --bind-address|--secure-port|--audit-log-path|--endpoint-reconciler-type) skip=1 ;;
            --bind-address=*|--secure-port=*|--audit-log-path=*|--endpoint-reconciler-type=*) ;;
            *) args+=("${CMD[i]}") ;;
        esac
    done
    args+=(--bind-address 127.0.0.1 --secure-port "${port}"
           --audit-log-path "${dir}/audit.log" --endpoint-reconciler-type none)
    printf '%s\0' "${args[@]}" >"${dir}/cmdline"
    echo "${port}" >"${dir}/port"
    local pid
    pid="$(launch "${dir}/apiserver.log" "${args[@]}")"
    echo "${pid}" >"${dir}/pid"
    wait_ready "https://127.0.0.1:${port}" "${pid}"
    echo "${port}"
}

private_pid() {
    [[ -f "$1/pid" ]] || die "no private apiserver in $1"
    cat "$1/pid"
}

# stop_pid PID SIGNAL: signal and wait until gone (10 s, then SIGKILL)
stop_pid() {
    local pid="$1" sig="$2"
    [[ -d "/proc/${pid}" ]] || return 0
    kill "-${sig}" "${pid}" 2>/dev/null || true
    for _ in $(seq 1 100); do [[ -d "/proc/${pid}" ]] || return 0; sleep 0.1; done
    kill -KILL "${pid}" 2>/dev/null || true
    for _ in $(seq 1 50); do [[ -d "/proc/${pid}" ]] || return 0; sleep 0.1; done
    die "pid ${pid} would not exit"
}

private_restart() {
    local dir="$1" port pid
    mapfile -d '' -t CMD <"${dir}/cmdline"
    port="$(cat "${dir}/port")"
    stop_pid "$(private_pid "${dir}")" TERM
    pid="$(launch "${dir}/apiserver.log" "${CMD[@]}")"
    echo "${pid}" >"${dir}/pid"
    wait_ready "https://127.0.0.1:${port}" "${pid}"
    echo "${port}"
}

main_restart() {
    local pid url
    pid="$(main_pid)"
    read_cmdline "${pid}"
    # shellcheck disable=SC1091
    source "${STATE}/cp.env"
    url="${KCCL_CP_APISERVER:?}"
    stop_pid "${pid}" TERM
    pid="$(launch "${STATE}/logs/kube-apiserver.log" "${CMD[@]}")"
    echo "${pid}" >"${STATE}/run/kube-apiserver.pid"
    wait_ready "${url}" "${pid}"
}

case "${1:-}" in
    private-start) private_start "${2:?DIR}" ;;
    private-kill) stop_pid "$(private_pid "${2:?DIR}")" KILL ;;
    private-restart) private_restart "${2:?DIR}" ;;
    private-stop) stop_pid "$(private_pid "${2:?DIR}")" TERM; rm -f "${2}/pid" ;;
    main-restart) main_restart ;;
    *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

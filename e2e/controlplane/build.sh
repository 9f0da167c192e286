#!/usr/bin/env bash
# Build (once) the official Kubernetes control-plane binaries, kubectl and helm
# for the local test control plane, and cache them outside the repository:
#
#   ${KCCL_CACHE_DIR:-$HOME/.cache/kccl}/k8s-<version>/bin/
#       kube-apiserver kube-controller-manager kube-scheduler kubectl helm
#
# Also makes sure the host tools cp.sh needs are present (etcd, openssl, ip),
# installing the Debian packages only when a tool is missing.
#
# Safe to interrupt and to re-run: binaries are built into a staging directory
# and the finished set is renamed into place; a stamp file marks a complete
# build, so a second run returns within seconds.
#
# Usage: build.sh [--print-bin-dir] [--force]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "${HERE}/versions.env"

K8S_VERSION="${KCCL_K8S_VERSION:?}"
HELM_VERSION="${KCCL_HELM_VERSION:?}"
CACHE_ROOT="${KCCL_CACHE_DIR:-${HOME}/.cache/kccl}"
DEST="${CACHE_ROOT}/k8s-${K8S_VERSION}"
BIN="${DEST}/bin"
STAMP="${DEST}/.build-complete"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl helm)

print_only=0
force=0
for arg in "$@"; do
    case "${arg}" in
        --print-bin-dir) print_only=1 ;;
        --force) force=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument: ${arg}" >&2; exit 2 ;;
    esac
done
if [[ ${print_only} -eq 1 ]]; then
    echo "${BIN}"
    exit 0
fi

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- host tools
as_root() {
    if [[ ${EUID} -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root to run: $*"
    fi
}

apt_updated=0
apt_install() {
    if [[ ${apt_updated} -eq 0 ]]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    log "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_host_tools() {
    local pkgs=()
    command -v etcd >/dev/null 2>&1 || pkgs+=(etcd-server)
    command -v openssl >/dev/null 2>&1 || pkgs+=(openssl)
    command -v ip >/dev/null 2>&1 || pkgs+=(iproute2)
    if [[ ${#pkgs[@]} -gt 0 ]]; then
        apt_install "${pkgs[@]}"
    fi
}

# ---------------------------------------------------------------- Go
find_go() {
    if [[ -n "${GO:-}" ]]; then echo "${GO}"; return; fi
    if command -v go >/dev/null 2>&1; then command -v go; return; fi
    if [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go; return; fi
    die "Go toolchain not found (set GO=/path/to/go)"
}

# The Go commands run in their own process group, in the background, so that an
# interrupt (Ctrl-C, SIGTERM) stops them too instead of leaving an orphan build.
# They do not inherit the lock descriptor (9).
child=""
on_signal() {
    log "interrupted; stopping the Go build (finished binaries stay in staging)"
    if [[ -n "${child}" ]]; then
        kill -TERM -- "-${child}" 2>/dev/null || kill -TERM "${child}" 2>/dev/null || true
        wait "${child}" 2>/dev/null || true
    fi
    exit 130
}
trap on_signal INT TERM

# in_dir DIR CMD...: run CMD in DIR as described above; returns its status.
in_dir() {
    local dir="$1"; shift
    # shellcheck disable=SC2016 # $0 and $@ belong to the inner shell
    setsid bash -c 'cd "$0" && exec "$@"' "${dir}" "$@" 9>&- &
    child=$!
    local rc=0
    wait "${child}" || rc=$?
    child=""
    return "${rc}"
}

stamp_text() {
    printf 'k8s=%s helm=%s go=%s\n' "${K8S_VERSION}" "${HELM_VERSION}" "$1"
}

is_complete() {
    local want="$1" b
    [[ -f "${STAMP}" ]] || return 1
    [[ "$(cat "${STAMP}")" == "${want}" ]] || return 1
    for b in "${BINARIES[@]}"; do
        [[ -x "${BIN}/${b}" ]] || return 1
    done
}

main() {
    ensure_host_tools

    local go_bin go_version want
    go_bin="$(find_go)"
    export GOTOOLCHAIN=local CGO_ENABLED=0
    go_version="$("${go_bin}" env GOVERSION)"
    want="$(stamp_text "${go_version}")"

    if [[ ${force} -eq 0 ]] && is_complete "${want}"; then
        log "cached: ${BIN} (${want})"
        return 0
    fi

    mkdir -p "${DEST}"
    # One builder at a time; a second concurrent build.sh waits for the first.
    exec 9>"${DEST}/.lock"
    if ! flock -n 9; then
        log "another build.sh holds ${DEST}/.lock; waiting"
        flock 9
    fi
    if [[ ${force} -eq 0 ]] && is_complete "${want}"; then
        log "cached: ${BIN} (built by a concurrent run)"
        return 0
    fi

    local t_all staging work
    t_all=$(date +%s)
    staging="${DEST}/staging"          # survives interruption; finished binaries are kept
    work="${DEST}/wrapper"             # generated Go module; never inside the repository
    mkdir -p "${staging}"
    rm -rf "${work}"
    mkdir -p "${work}"

    # A binary left in staging by an interrupted run is reused only if it was
    # built for exactly this stamp.
    if [[ -f "${staging}/.stamp" && "$(cat "${staging}/.stamp")" != "${want}" ]] || [[ ${force} -eq 1 ]]; then
        rm -rf "${staging}"
        mkdir -p "${staging}"
    fi
    printf '%s\n' "${want}" >"${staging}/.stamp"

    # ----------------------------------------------------------- wrapper module
    log "resolving k8s.io/kubernetes@${K8S_VERSION}"
    local modfile minor patch staging_minor
    modfile="$(cd "${work}" && "${go_bin}" mod download -json "k8s.io/kubernetes@${K8S_VERSION}" 9>&- \
        | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
    [[ -f "${modfile}" ]] || die "could not download k8s.io/kubernetes@${K8S_VERSION}"
    # vX.Y.Z -> staging modules are released as v0.Y.Z
    minor="$(cut -d. -f2 <<<"${K8S_VERSION}")"
    patch="$(cut -d. -f3 <<<"${K8S_VERSION}")"
    staging_minor="v0.${minor}.${patch}"

    local go_directive
    go_directive="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "${modfile}" | head -n1)"
    cat >"${work}/go.mod" <<EOF
module kccl.local/k8s-build-wrapper

go ${go_directive:-1.25}
EOF
    # One "-replace k8s.io/X=k8s.io/X@v0.Y.Z" per "k8s.io/X => ./staging/..." line.
    local -a replaces=()
    local mod
    while read -r mod; do
        replaces+=("-replace=${mod}=${mod}@${staging_minor}")
    done < <(sed -n 's/^[[:space:]]*\([^[:space:]]*\)[[:space:]]*=>[[:space:]]*\.\/staging\/.*$/\1/p' "${modfile}")
    [[ ${#replaces[@]} -gt 10 ]] || die "found only ${#replaces[@]} staging replaces in ${modfile}"
    log "${#replaces[@]} staging modules -> ${staging_minor}"
    in_dir "${work}" "${go_bin}" mod edit "${replaces[@]}" "-require=k8s.io/kubernetes@${K8S_VERSION}"

    cat >"${work}/tools.go" <<'EOF'
//go:build tools

// Package tools only records which main packages this wrapper module builds.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
    log "go mod tidy (downloads dependencies)"
    in_dir "${work}" "${go_bin}" mod tidy || die "go mod tidy failed in ${work}"

    # ----------------------------------------------------------- k8s binaries
    local build_date ldflags
    build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    ldflags="-s -w"
    local pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X ${pkg}.gitVersion=${K8S_VERSION}"
        ldflags+=" -X ${pkg}.gitMajor=$(cut -d. -f1 <<<"${K8S_VERSION#v}")"
        ldflags+=" -X ${pkg}.gitMinor=${minor}"
        ldflags+=" -X ${pkg}.gitTreeState=clean"
        ldflags+=" -X ${pkg}.buildDate=${build_date}"
    done

    local b t
    for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
        if [[ -x "${staging}/${b}" ]]; then
            log "${b}: already built by an earlier, interrupted run"
            continue
        fi
        t=$(date +%s)
        log "${b}: go build (this is the slow part on a cold cache)"
        in_dir "${work}" "${go_bin}" build -p 2 -trimpath -ldflags "${ldflags}" \
            -o "${staging}/${b}.partial" "k8s.io/kubernetes/cmd/${b}" \
            || die "go build ${b} failed"
        mv -f "${staging}/${b}.partial" "${staging}/${b}"
        log "${b}: built in $(( $(date +%s) - t )) s"
    done

    # ----------------------------------------------------------- helm
    if [[ -x "${staging}/helm" ]]; then
        log "helm: already built by an earlier, interrupted run"
    else
        t=$(date +%s)
        log "helm ${HELM_VERSION}: go install"
        local gobin="${staging}/helm-gobin"
        rm -rf "${gobin}"
        local hl="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
        hl+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
        # Default kube version for `helm template`/`helm lint` = the pinned cluster.
        hl+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1"
        hl+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${minor}"
        hl+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1"
        hl+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${minor}"
        in_dir "${work}" env GOBIN="${gobin}" "${go_bin}" install -p 2 -trimpath -ldflags "${hl}" \
            "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" || die "go install helm failed"
        mv -f "${gobin}/helm" "${staging}/helm"
        rm -rf "${gobin}"
        log "helm: built in $(( $(date +%s) - t )) s"
    fi

    # ----------------------------------------------------------- publish
    "${staging}/kube-apiserver" --version | grep -qx "Kubernetes ${K8S_VERSION}" \
        || die "kube-apiserver --version does not report ${K8S_VERSION}"
    rm -f "${staging}/.stamp"
    rm -rf "${BIN}.old"
    if [[ -d "${BIN}" ]]; then mv "${BIN}" "${BIN}.old"; fi
    mv "${staging}" "${BIN}"
    rm -rf "${BIN}.old" "${work}"
    printf '%s\n' "${want}" >"${STAMP}.tmp"
    mv -f "${STAMP}.tmp" "${STAMP}"
    local secs=$(( $(date +%s) - t_all ))
    printf '%s build took %d s on %s CPU(s)\n' "$(date -u +%FT%TZ)" "${secs}" "$(nproc)" >>"${DEST}/build-times.log"
    log "done in ${secs} s: ${BIN}"
}

main

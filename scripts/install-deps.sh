#!/usr/bin/env bash
# Installs what kccl's build, tests, lint and fuzzers need, idempotently.
# Packages already present are skipped, so a second run costs a dpkg query and nothing else.
# Usage: scripts/install-deps.sh [--with-cuda]
set -euo pipefail

APT_PACKAGES=(
    build-essential cmake ninja-build pkg-config
    libcmocka-dev libssl-dev            # unit tests, HMAC-SHA256
    libcurl4-openssl-dev libcjson-dev libyaml-dev   # kube client
    libmicrohttpd-dev                   # operator: health and webhook servers
    libibverbs-dev                      # verbs headers (dlopen at run time)
    clang libclang-rt-14-dev llvm       # libFuzzer and sanitizer runtimes
    clang-format clang-tidy cppcheck    # format and lint
    iproute2 procps psmisc util-linux   # network namespaces for tests
    python3-yaml openssl                # chart tests (tests/integration/chart: helm output, certificates)
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "${1:-}" = "--with-cuda" ]; then
    "$(dirname "$0")/install-cuda-wheels.sh"
fi

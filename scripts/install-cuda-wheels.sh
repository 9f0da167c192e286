#!/usr/bin/env bash
# Installs a CUDA 13.0 compiler (nvcc, its front end cudafe/cicc, the C runtime headers, CCCL and
# the CUDA runtime library) from PyPI wheels, for machines with no CUDA toolkit: CI uses it to
# compile every .cu file for sm_90 without a GPU or a driver. Nothing here can run a kernel.
#
# Idempotent: the wheels go into a virtual environment under ~/.cache/kccl/cuda-wheels (or
# $KCCL_CUDA_WHEELS_DIR); a stamp file records the pinned set, so a second run only checks it.
# The 13.0 series matches the GPU test hosts (driver 580, CUDA 13.0).
#
# Usage: scripts/install-cuda-wheels.sh [--print-root]
#   prints the nvcc path on the last line of stdout (--print-root: the toolkit root instead).
# Then: cmake -DKCCL_WITH_CUDA=ON -DCMAKE_CUDA_COMPILER="$(scripts/install-cuda-wheels.sh | tail -1)"
set -euo pipefail

CUDA_SERIES="13.0"
PACKAGES=(
    "nvidia-cuda-nvcc~=${CUDA_SERIES}.0"
    "nvidia-cuda-crt~=${CUDA_SERIES}.0"
    "nvidia-nvvm~=${CUDA_SERIES}.0"
    "nvidia-cuda-runtime~=${CUDA_SERIES}.0"
    "nvidia-cuda-cccl~=${CUDA_SERIES}.0"
)

DIR="${KCCL_CUDA_WHEELS_DIR:-${HOME}/.cache/kccl/cuda-wheels}"
VENV="${DIR}/venv"
STAMP="${DIR}/installed.txt"
PYTHON="${PYTHON:-python3}"

want="$(printf '%s\n' "${PACKAGES[@]}")"

find_root() {
    # The wheels put the toolkit under site-packages/nvidia/cu13 (bin/, include/, lib/, nvvm/).
    local nvcc
    nvcc="$(find "${VENV}" -path '*/nvidia/*/bin/nvcc' -type f 2>/dev/null | head -1)"
    [ -n "${nvcc}" ] || return 1
    dirname "$(dirname "${nvcc}")"
}

if [ ! -f "${STAMP}" ] || [ "$(cat "${STAMP}")" != "${want}" ] || ! find_root >/dev/null; then
    mkdir -p "${DIR}"
    if [ ! -x "${VENV}/bin/python" ]; then
        "${PYTHON}" -m venv "${VENV}" >&2
    fi
    "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check "${PACKAGES[@]}" >&2
    printf '%s\n' "${want}" > "${STAMP}"
fi

ROOT="$(find_root)" || { echo "install-cuda-wheels: nvcc not found under ${VENV}" >&2; exit 1; }

# nvcc looks for cicc under <root>/nvvm/bin and for crt headers under <root>/include; the
# nvvm and crt wheels install into the same <root>, so the tree is complete. Older wheel
# layouts split them; link what is missing so nvcc finds it either way.
if [ ! -e "${ROOT}/nvvm/bin/cicc" ]; then
    cicc="$(find "${VENV}" -name cicc -type f 2>/dev/null | head -1)"
    if [ -n "${cicc}" ]; then
        mkdir -p "${ROOT}/nvvm"
        ln -sfn "$(dirname "$(dirname "${cicc}")")"/* "${ROOT}/nvvm/" 2>/dev/null || true
    fi
fi
# nvcc.profile links from <root>/lib64 while the wheels install <root>/lib; and CMake's CUDA
# detection links against libcudart.so, where a wheel may ship only the versioned object.
if [ ! -e "${ROOT}/lib64" ] && [ -d "${ROOT}/lib" ]; then
    ln -s lib "${ROOT}/lib64"
fi
for libdir in "${ROOT}/lib"; do
    [ -d "${libdir}" ] || continue
    so="$(ls "${libdir}"/libcudart.so.* 2>/dev/null | head -1 || true)"
    if [ -n "${so}" ] && [ ! -e "${libdir}/libcudart.so" ]; then
        ln -s "$(basename "${so}")" "${libdir}/libcudart.so"
    fi
done

if [ "${1:-}" = "--print-root" ]; then
    echo "${ROOT}"
else
    echo "${ROOT}/bin/nvcc"
fi

# ghcr.io/kccl/kccl-runtime: libkccl with the CUDA transports and kernels (sm_90 by default),
# kccl-demo, kccl-run and kccl-info in /usr/local/bin, on the CUDA 13.0 runtime base. rdma-core's
# libibverbs and providers are installed (libkccl dlopen's libibverbs for GPUDirect RDMA; without
# an HCA it uses TCP and says so). A base for GPU applications: FROM it and add yours.
#   docker build -f deploy/docker/runtime.Dockerfile -t ghcr.io/kccl/kccl-runtime:0.1.0 .
#   (other GPUs: --build-arg CUDA_ARCHITECTURES="80;90")
ARG CUDA_VERSION=13.0.0
ARG UBUNTU=ubuntu24.04

FROM nvidia/cuda:${CUDA_VERSION}-devel-${UBUNTU} AS build
ARG CUDA_ARCHITECTURES=90
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      cmake ninja-build pkg-config libssl-dev libibverbs-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKCCL_WERROR=OFF \
      -DKCCL_WITH_CUDA=ON -DKCCL_WITH_IBVERBS=ON -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHITECTURES}" \
      -DKCCL_BUILD_KUBE=OFF -DKCCL_BUILD_TESTS=OFF -DKCCL_BUILD_BENCH=OFF \
      -DCMAKE_INSTALL_PREFIX=/usr/local \
 && ninja -C /build \
 && DESTDIR=/out cmake --install /build \
 && rm -rf /out/usr/local/include /out/usr/local/lib/*.a

FROM nvidia/cuda:${CUDA_VERSION}-runtime-${UBUNTU}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libssl3t64 libibverbs1 ibverbs-providers \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/usr/local/ /usr/local/
RUN ldconfig
USER 65532:65532
CMD ["kccl-info"]

# ghcr.io/kccl/kccl-runtime-cpu: libkccl without CUDA (TCP transport), kccl-demo, kccl-run and
# kccl-info in /usr/local/bin, on debian slim; the example Indexed Job runs kccl-demo from it.
#   docker build -f deploy/docker/runtime-cpu.Dockerfile -t ghcr.io/kccl/kccl-runtime-cpu:0.1.0 .
ARG DEBIAN_IMAGE=debian:bookworm

FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      build-essential cmake ninja-build pkg-config libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKCCL_WERROR=OFF \
      -DKCCL_BUILD_KUBE=OFF -DKCCL_BUILD_TESTS=OFF -DKCCL_BUILD_BENCH=OFF \
      -DCMAKE_INSTALL_PREFIX=/usr/local \
 && ninja -C /build \
 && DESTDIR=/out cmake --install /build \
 && rm -rf /out/usr/local/include /out/usr/local/lib/*.a \
 && strip /out/usr/local/bin/*

FROM ${DEBIAN_IMAGE}-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libssl3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/usr/local/ /usr/local/
RUN ldconfig
USER 65532:65532
CMD ["kccl-info"]

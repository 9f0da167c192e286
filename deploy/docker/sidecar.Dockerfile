# ghcr.io/kccl/kccl-sidecar: the per-pod agent the webhook injects (sidecar/README.md).
# kccl-sidecar-static is fully static (libcurl over Mbed TLS, cJSON, libyaml, libcrypto linked
# in; sidecar/static/build-deps.sh), so the image is distroless/static: no shell, no libc,
# one binary, user 65532.
#   docker build -f deploy/docker/sidecar.Dockerfile -t ghcr.io/kccl/kccl-sidecar:0.1.0 .
ARG DEBIAN_IMAGE=debian:bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      build-essential cmake ninja-build pkg-config dpkg-dev ca-certificates \
      libssl-dev libyaml-dev libcurl4-openssl-dev libcjson-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# build-deps.sh fetches pinned Debian sources (sha256-checked) and builds the static libraries
RUN deps="$(sidecar/static/build-deps.sh)" \
 && cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKCCL_WERROR=OFF \
      -DKCCL_BUILD_TESTS=OFF -DKCCL_BUILD_BENCH=OFF -DKCCL_SIDECAR_STATIC_DEPS="${deps}" \
 && ninja -C /build kccl-sidecar-static \
 && install -D -m 0755 "$(find /build -type f -name kccl-sidecar-static | head -n 1)" \
      /out/kccl-sidecar \
 && strip /out/kccl-sidecar

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/kccl-sidecar /usr/local/bin/kccl-sidecar
USER 65532:65532
# the webhook passes args ["run"]; the readiness probe runs `kccl-sidecar probe`
ENTRYPOINT ["/usr/local/bin/kccl-sidecar"]
CMD ["run"]

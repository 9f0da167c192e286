# ghcr.io/kccl/kccl-operator: the CommGroup controller and admission webhook (operator/).
# The binary links Debian's shared libcurl, cJSON, libyaml and libmicrohttpd (GnuTLS); the
# build stage copies exactly the libraries `ldd` names (the transitive closure, less glibc,
# which the base has) next to it, onto distroless/cc: no shell, no package manager, user 65532.
#   docker build -f deploy/docker/operator.Dockerfile -t ghcr.io/kccl/kccl-operator:0.1.0 .
ARG DEBIAN_IMAGE=debian:bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      build-essential cmake ninja-build pkg-config ca-certificates \
      libssl-dev libcurl4-openssl-dev libcjson-dev libyaml-dev libmicrohttpd-dev libgnutls28-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKCCL_WERROR=OFF \
      -DKCCL_BUILD_TESTS=OFF -DKCCL_BUILD_BENCH=OFF \
 && ninja -C /build kccl-operator \
 && install -D -m 0755 "$(find /build -type f -name kccl-operator | head -n 1)" \
      /out/usr/local/bin/kccl-operator \
 && strip /out/usr/local/bin/kccl-operator \
 && mkdir -p /out/usr/local/lib/kccl \
 && ldd /out/usr/local/bin/kccl-operator | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' \
    | grep -Ev '/(libc|libm|libpthread|libdl|librt|ld-linux-x86-64)\.so' \
    | xargs -r -I{} cp -L {} /out/usr/local/lib/kccl/

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/ /
ENV LD_LIBRARY_PATH=/usr/local/lib/kccl
USER 65532:65532
EXPOSE 8081 9443
ENTRYPOINT ["/usr/local/bin/kccl-operator"]

#!/usr/bin/env bash
# Builds the static dependencies of kccl-sidecar-static, the sidecar binary meant for the
# image: libcurl (HTTP/HTTPS only) over Mbed TLS, and cJSON, as static libraries with
# -ffunction-sections, so that the sidecar links with -static -Wl,--gc-sections and keeps
# only what it runs. Why: Debian's shared libcurl drags in ~20 libraries (OpenSSL, GnuTLS,
# Kerberos, LDAP, ...) whose mapped pages alone make a 12 MiB RSS; the static sidecar stays
# under 3 MiB (README.md, "Memory").
#
# Sources come from the Debian archive through apt-get (a temporary source list; the
# system's apt configuration is not touched), are checked against the sha256 pins below,
# and are built once into ${KCCL_CACHE_DIR:-~/.cache/kccl}/sidecar-static-<key>/prefix.
#   mbedtls 3.6.6 (trixie): 3.x is the first to verify an IP address against the
#            certificate's iPAddress subjectAltName; the apiserver is reached by IP
#   curl 8.14.1 (trixie, upstream tarball): sets the RNG before mbedtls_ssl_setup and
#            initialises PSA, as Mbed TLS 3.6 requires (curl 7.88 fails "ssl_init")
#   cJSON 1.7.15 (bookworm, with Debian's patches): the version the system headers carry
#
# Usage: sidecar/static/build-deps.sh            build (once) and print the prefix
#        sidecar/static/build-deps.sh --print    print the prefix if built, else exit 1
#        sidecar/static/build-deps.sh --force    rebuild
# Then: cmake -S . -B build -DKCCL_SIDECAR_STATIC_DEPS="$(sidecar/static/build-deps.sh)"
# Needs: apt-get, dpkg-source (dpkg-dev), cmake, make, a C compiler; libyaml-dev and
# libssl-dev for their static archives (the build links libyaml.a and libcrypto.a).
set -euo pipefail

MBEDTLS_VER=3.6.6-0.1~deb13u1
CURL_UPSTREAM=8.14.1
CJSON_VER=1.7.15-1+deb12u4
declare -A SHA256=(
    [mbedtls_3.6.6.orig.tar.bz2]=8fb65fae8dcae5840f793c0a334860a411f884cc537ea290ce1c52bb64ca007a
    [mbedtls_3.6.6-0.1~deb13u1.debian.tar.xz]=210466c522eeebc85cf2f76bd5aef935b4ebac465559cc0a84f9e73a8ed6601c
    [mbedtls_3.6.6-0.1~deb13u1.dsc]=eb9ed1adbbddcb0d00276fac6fcee0056c64ce01481c2522a16dca75792eb5eb
    [curl_8.14.1.orig.tar.gz]=6766ada7101d292b42b8b15681120acd68effa4a9660935853cf6d61f0d984d4
    [cjson_1.7.15.orig.tar.gz]=5308fd4bd90cef7aa060558514de6a1a4a0819974a26e6ed13973c5f624c24b2
    [cjson_1.7.15-1+deb12u4.debian.tar.xz]=afd19a970966cf534ff1e9ec077d710a5e7e78eb4ec9b499c8bdc32e55da12cb
    [cjson_1.7.15-1+deb12u4.dsc]=764c2de141d680f4fb4cada30c526dacaa30ead061b9b9c34f2b81e2df0f8439
)
KEY=v1-mbedtls3.6.6-curl${CURL_UPSTREAM}-cjson1.7.15
CACHE="${KCCL_CACHE_DIR:-$HOME/.cache/kccl}/sidecar-static-${KEY}"
PREFIX="${CACHE}/prefix"
JOBS=${KCCL_JOBS:-2}

log() { printf '[sidecar-static %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

case "${1:-}" in
    --print) [[ -f "${CACHE}/.complete" ]] && { echo "${PREFIX}"; exit 0; }; exit 1 ;;
    --force) rm -rf "${CACHE}" ;;
    "") ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//; /^set -euo/d'; exit 2 ;;
esac
if [[ -f "${CACHE}/.complete" ]]; then
    echo "${PREFIX}"
    exit 0
fi
for tool in apt-get dpkg-source cmake make cc sha256sum; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install dpkg-dev cmake make gcc)"
done

mkdir -p "${CACHE}"
exec 9>"${CACHE}/.lock"
flock 9
SRC="${CACHE}/src"
rm -rf "${SRC}" "${PREFIX}"
mkdir -p "${SRC}/lists/partial" "${PREFIX}/lib" "${PREFIX}/include/cjson"
cd "${SRC}"

log "fetching sources from the Debian archive"
cat >sources.list <<'EOF'
deb-src http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian trixie main
EOF
APT=(apt-get -q -o Dir::Etc::SourceList="${SRC}/sources.list" -o Dir::Etc::SourceParts=/nonexistent
     -o Dir::State::Lists="${SRC}/lists" -o APT::Sandbox::User=root)
"${APT[@]}" update >apt.log 2>&1 || die "apt-get update failed (see ${SRC}/apt.log)"
"${APT[@]}" source --download-only "mbedtls=${MBEDTLS_VER}" "cjson=${CJSON_VER}" >>apt.log 2>&1 ||
    die "apt-get source failed (see ${SRC}/apt.log)"
# curl: only the upstream tarball is needed (the Debian revision's files may be gone from
# the mirror while the tarball, shared by every revision, stays)
"${APT[@]}" source --download-only curl >>apt.log 2>&1 || true
for f in "${!SHA256[@]}"; do
    [[ -f "$f" ]] || die "$f was not downloaded (see ${SRC}/apt.log)"
    echo "${SHA256[$f]}  $f" | sha256sum -c --quiet - || die "$f: sha256 mismatch"
done

log "building Mbed TLS (static, TLS 1.2 and 1.3)"
dpkg-source -x "mbedtls_${MBEDTLS_VER}.dsc" mbedtls >dpkg.log 2>&1
cmake -S mbedtls -B mbedtls/build -DCMAKE_BUILD_TYPE=MinSizeRel -DENABLE_TESTING=OFF \
    -DENABLE_PROGRAMS=OFF -DUSE_STATIC_MBEDTLS_LIBRARY=ON -DUSE_SHARED_MBEDTLS_LIBRARY=OFF \
    -DGEN_FILES=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DCMAKE_C_FLAGS="-ffunction-sections -fdata-sections" -DCMAKE_INSTALL_PREFIX="${PREFIX}" \
    >mbedtls.log 2>&1 || die "mbedtls: cmake failed (see ${SRC}/mbedtls.log)"
cmake --build mbedtls/build -j"${JOBS}" >>mbedtls.log 2>&1 || die "mbedtls: build failed"
cmake --install mbedtls/build >>mbedtls.log 2>&1

log "building libcurl ${CURL_UPSTREAM} (HTTP and HTTPS only, Mbed TLS, static)"
mkdir curl
tar xzf "curl_${CURL_UPSTREAM}.orig.tar.gz" -C curl --strip-components=1
(
    cd curl
    ./configure --prefix="${PREFIX}" --disable-shared --enable-static --with-pic \
        --with-mbedtls="${PREFIX}" --without-openssl --without-gnutls \
        --disable-ldap --disable-ldaps --disable-rtsp --disable-dict --disable-telnet \
        --disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp \
        --disable-gopher --disable-mqtt --disable-ftp --disable-file --disable-ipfs \
        --disable-manual --disable-ntlm --disable-tls-srp --disable-cookies --disable-alt-svc \
        --disable-hsts --disable-doh --disable-netrc --disable-threaded-resolver \
        --disable-kerberos-auth --disable-negotiate-auth --disable-digest-auth --disable-aws \
        --disable-mime --disable-bindlocal --disable-progress-meter --disable-websockets \
        --without-zlib --without-brotli --without-zstd --without-libidn2 --without-libpsl \
        --without-nghttp2 --without-ngtcp2 --without-nghttp3 --without-libssh2 --without-libssh \
        --without-librtmp --without-libgsasl --without-ca-bundle --without-ca-path \
        --without-ca-embed --disable-docs CFLAGS="-Os -ffunction-sections -fdata-sections"
    make -C lib -j"${JOBS}"
    make -C lib install
    make -C include install
) >curl.log 2>&1 || die "curl: build failed (see ${SRC}/curl.log)"

log "building cJSON (static)"
dpkg-source -x "cjson_${CJSON_VER}.dsc" cjson >>dpkg.log 2>&1
cc -Os -fPIC -ffunction-sections -fdata-sections -c cjson/cJSON.c -o cjson/cJSON.o
ar rcs "${PREFIX}/lib/libcjson.a" cjson/cJSON.o
cp cjson/cJSON.h "${PREFIX}/include/cjson/"

printf 'mbedtls %s\ncurl %s\ncjson %s\nbuilt %s\n' "${MBEDTLS_VER}" "${CURL_UPSTREAM}" \
    "${CJSON_VER}" "$(date -u +%FT%TZ)" >"${CACHE}/.complete"
log "done: ${PREFIX}"
echo "${PREFIX}"

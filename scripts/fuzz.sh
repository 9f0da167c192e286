#!/usr/bin/env bash
# Builds every libFuzzer target with clang in build-fuzz/, replays each seed corpus, then fuzzes
# each target for SECONDS (default 10). Any crash, leak, timeout or broken property fails the
# script; reproducers land in build-fuzz/fuzz-artifacts/<target>/.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]
#
# Fuzzers are found through CTest: every target registers a test labelled `fuzz` whose command is
# `<fuzzer> -runs=0 <corpus dir>` (tests/fuzz/CMakeLists.txt's kccl_add_fuzzer does, kube/fuzz
# too). An optional dictionary NAME.dict next to the corpus directory is used when present.
# New inputs found while fuzzing go to build-fuzz/fuzz-work/<target>/, never into the committed
# corpora; copy the interesting ones into the corpus by hand (libFuzzer -merge=1 helps).
set -euo pipefail

cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-10}
BUILD=${KCCL_FUZZ_BUILD_DIR:-build-fuzz}
JOBS=${KCCL_JOBS:-2}
case "$SECONDS_PER_TARGET" in
    ''|*[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac

CC=${KCCL_FUZZ_CC:-clang}
command -v "$CC" >/dev/null || { echo "fuzz: $CC not found; run scripts/install-deps.sh" >&2; exit 2; }

echo "== fuzz: configure and build $BUILD ($CC)"
mkdir -p "$BUILD"
# Warnings are the gcc -Werror build's job; this build only has to produce fuzzers.
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DKCCL_BUILD_FUZZ=ON -DKCCL_BUILD_TESTS=OFF -DKCCL_BUILD_BENCH=OFF -DKCCL_BUILD_KUBE=ON \
    -DKCCL_WERROR=OFF \
    -DKCCL_SANITIZE= >"$BUILD/configure.log" 2>&1 || { cat "$BUILD/configure.log"; exit 1; }
ninja -C "$BUILD" -j"$JOBS" >"$BUILD/build.log" 2>&1 || { tail -50 "$BUILD/build.log"; exit 1; }

# name <TAB> fuzzer binary <TAB> corpus dir, from the `fuzz` CTest tests.
mapfile -t targets < <(ctest --test-dir "$BUILD" -L '^fuzz$' --show-only=json-v1 | python3 -c '
import json, sys
for t in json.load(sys.stdin).get("tests", []):
    cmd = t.get("command") or []
    if len(cmd) == 3 and cmd[1] == "-runs=0":
        print("\t".join([t["name"], cmd[0], cmd[2]]))
    else:
        sys.exit("fuzz: test %s is labelled fuzz but is not `<fuzzer> -runs=0 <corpus>`" % t["name"])
')
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no fuzz targets registered in $BUILD" >&2; exit 1; }

LOGS="$BUILD/fuzz-logs"
mkdir -p "$LOGS"
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
summary=()
failed=0
for line in "${targets[@]}"; do
    IFS=$'\t' read -r test bin corpus <<<"$line"
    name=$(basename "$bin")
    work="$BUILD/fuzz-work/$name"
    artifacts="$BUILD/fuzz-artifacts/$name/"
    mkdir -p "$work" "$artifacts"
    dict=()
    for d in "$(dirname "$corpus")/$name.dict" "$(dirname "$(dirname "$corpus")")/$name.dict"; do
        if [ -f "$d" ]; then dict=(-dict="$d"); break; fi
    done
    seeds=$(find "$corpus" -type f | wc -l)

    echo "== fuzz: $name: replay $seeds seeds from $corpus"
    if ! "$bin" -runs=0 -timeout=10 -artifact_prefix="$artifacts" "$corpus" >"$LOGS/$name.replay.log" 2>&1; then
        tail -40 "$LOGS/$name.replay.log"
        summary+=("$(printf '%-22s FAIL  replay of %s (log: %s)' "$name" "$corpus" "$LOGS/$name.replay.log")")
        failed=$((failed + 1))
        continue
    fi

    echo "== fuzz: $name: ${SECONDS_PER_TARGET}s"
    rc=0
    "$bin" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts" "${dict[@]}" "$work" "$corpus" >"$LOGS/$name.log" 2>&1 || rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOGS/$name.log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$LOGS/$name.log" | tail -1 | tr -d 'cov: ')
    found=$(find "$work" -type f | wc -l)
    if [ $rc -ne 0 ]; then
        tail -60 "$LOGS/$name.log"
        summary+=("$(printf '%-22s FAIL  exit %d after %s runs; reproducer in %s (log: %s)' \
            "$name" "$rc" "${runs:-?}" "$artifacts" "$LOGS/$name.log")")
        failed=$((failed + 1))
    else
        summary+=("$(printf '%-22s ok    %10s runs  cov %5s  %3d seeds  %4d new inputs' \
            "$name" "${runs:-?}" "${cov:-?}" "$seeds" "$found")")
    fi
done

echo "== fuzz summary (${SECONDS_PER_TARGET}s per target)"
printf '  %s\n' "${summary[@]}"
if [ $failed -gt 0 ]; then
    echo "fuzz: $failed of ${#targets[@]} targets FAILED"
    exit 1
fi
echo "fuzz: all ${#targets[@]} targets passed"

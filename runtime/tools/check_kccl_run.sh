#!/usr/bin/env bash
# check_kccl_run.sh - quick behavioural check of the kccl-run launcher with /bin/sh ranks
# (no kccl library calls in the ranks): output prefixing, the environment each rank
# gets, exit-status propagation, teardown when a rank dies, signal forwarding, orphan
# protection, --timeout, usage errors, and that the secret's temp dir never outlives a
# run. The multi-process bootstrap tests live in tests/integration/.
#
# usage: check_kccl_run.sh PATH/TO/kccl-run      (prints "N passed, N failed" last)
#
# Every process a run starts carries KCCL_CHECK_TAG=<unique> in its environment, so the
# check can find (and finally kill) exactly its own leftovers and nobody else's.
# The ranks' scripts and the eval'd checks expand later, on purpose:
# shellcheck disable=SC2016
set -u

KR=${1:?usage: check_kccl_run.sh PATH/TO/kccl-run}
[ -x "$KR" ] || { echo "check_kccl_run.sh: '$KR' is not executable" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/check-kccl-run.XXXXXX") || exit 2
export TMPDIR=$WORK/tmp # kccl-run makes its secret dir here: easy to check it is gone
mkdir -p "$TMPDIR"
unset KCCL_SOCKET_IFNAME KCCL_GROUP_SECRET KCCL_GROUP_SECRET_FILE KCCL_BOOTSTRAP_FILE
TAG="kccl-check-$$-$RANDOM$RANDOM"
PASSED=0
FAILED=0
OUT=$WORK/out
ERR=$WORK/err

tagged_pids() {
    grep -lzx "KCCL_CHECK_TAG=$TAG" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3
}

finish() {
    local p
    for p in $(tagged_pids); do kill -9 "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap finish EXIT

ok() { PASSED=$((PASSED + 1)); echo "ok    $1"; }
bad() {
    FAILED=$((FAILED + 1))
    echo "FAIL  $1: $2"
    echo "      --- stdout:"; sed 's/^/      /' "$OUT" 2>/dev/null | head -20
    echo "      --- stderr:"; sed 's/^/      /' "$ERR" 2>/dev/null | head -20
}

now_ms() { local t=${EPOCHREALTIME:-$(date +%s.%6N)}; t=${t//[.,]/}; echo $((10#$t / 1000)); }

# run_kr ARGS...: runs kccl-run (bounded by timeout(1) in case it hangs); sets RC and MS.
run_kr() {
    local t0
    t0=$(now_ms)
    timeout -k 2 25 env KCCL_CHECK_TAG="$TAG" "$KR" "$@" >"$OUT" 2>"$ERR"
    RC=$?
    MS=$(($(now_ms) - t0))
}

# Waits up to 3 s for every tagged process to be gone; returns 1 if some remain.
no_leftovers() {
    local _
    for _ in $(seq 30); do
        [ -z "$(tagged_pids)" ] && return 0
        sleep 0.1
    done
    return 1
}

no_secret_dir() { [ -z "$(ls -A "$TMPDIR")" ]; }

# check NAME CONDITION-DESCRIPTION COMMAND...: passes when COMMAND succeeds.
check() {
    local name=$1 what=$2
    shift 2
    if "$@"; then ok "$name"; else bad "$name" "$what"; fi
}

has() { grep -qxF -- "$2" "$1"; }

test_prefix() {
    run_kr -n 3 -- sh -c 'echo "out $KCCL_RANK"; echo "err $KCCL_RANK" >&2; printf "tail$KCCL_RANK"'
    check "prefix: exit 0" "rc=$RC" [ "$RC" = 0 ]
    check "prefix: stdout lines" "missing [r] out r / [r] tailr" \
        eval 'has "$OUT" "[0] out 0" && has "$OUT" "[1] out 1" && has "$OUT" "[2] out 2" &&
              has "$OUT" "[2] tail2" && [ $(wc -l <"$OUT") = 6 ]'
    check "prefix: stderr lines to stderr" "missing [1] err 1" \
        eval 'has "$ERR" "[1] err 1" && ! grep -q "err" "$OUT"'
    run_kr -n 2 --no-prefix -- echo hi
    check "--no-prefix" "want two bare 'hi' lines" eval '[ "$(cat "$OUT")" = "$(printf "hi\nhi")" ]'
    run_kr -n 1 -- sh -c 'head -c 100000 /dev/zero | tr "\0" x; echo; echo after'
    check "long line split, nothing lost" "bad long-line relay" \
        eval '[ $(grep -c "^\[0\] x" "$OUT") -ge 2 ] &&
              [ $(sed "s/^\[0\] //" "$OUT" | grep "^x" | tr -d "\n" | wc -c) = 100000 ] &&
              has "$OUT" "[0] after"'
}

test_env() {
    run_kr -n 2 -- sh -c 'f=$KCCL_GROUP_SECRET_FILE
        echo "$KCCL_RANK $KCCL_WORLD_SIZE ${#KCCL_UNIQUE_ID} $KCCL_SOCKET_IFNAME \
$(stat -c %a "$f") $(stat -c %s "$f") $(stat -c %a "$(dirname "$f")")"
        if [ -n "${KCCL_BOOTSTRAP_ROOT_FD:-}" ]; then
            echo "root $(readlink /proc/$$/fd/$KCCL_BOOTSTRAP_ROOT_FD | cut -c1-7)"; fi'
    check "env: rank, world, id, ifname lo, secret 0600/32 B in 0700 dir" "unexpected env" \
        eval 'has "$OUT" "[0] 0 2 171 lo 600 32 700" && has "$OUT" "[1] 1 2 171 lo 600 32 700"'
    check "env: root listener only in rank 0" "want '[0] root socket:' only" \
        eval 'has "$OUT" "[0] root socket:" && ! grep -q "^\[1\] root" "$OUT"'
    check "env: secret dir removed after a clean run" "left in $TMPDIR" no_secret_dir
}

test_exit_code() {
    run_kr -n 3 -- sh -c '[ "$KCCL_RANK" = 1 ] && exit 3; sleep 30'
    check "exit status of the failed rank" "rc=$RC, want 3" [ "$RC" = 3 ]
    check "failure is named" "no 'rank 1 exited with status 3'" \
        grep -q "kccl-run: rank 1 exited with status 3" "$ERR"
    check "others stopped quickly" "took $MS ms" [ "$MS" -lt 4000 ]
    check "no rank left behind (exit)" "tagged processes remain" no_leftovers
    check "secret dir removed after a failure" "left in $TMPDIR" no_secret_dir
}

test_killed_rank() {
    run_kr -n 3 -- sh -c 'if [ $KCCL_RANK = 1 ]; then kill -9 $$; else sleep 30; fi'
    check "killed rank: 128+9" "rc=$RC, want 137" [ "$RC" = 137 ]
    check "killed rank is named" "no 'rank 1 killed by signal 9'" \
        grep -q "kccl-run: rank 1 killed by signal 9" "$ERR"
    check "killed rank: launcher returns quickly" "took $MS ms" [ "$MS" -lt 4000 ]
    check "killed rank: no 'sleep 30' left" "tagged processes remain" no_leftovers
}

# Starts kccl-run in the background; waits until N ranks printed "ready". Sets BG.
start_bg() {
    local n=$1
    shift
    env KCCL_CHECK_TAG="$TAG" "$KR" -n "$n" "$@" >"$OUT" 2>"$ERR" &
    BG=$!
    for _ in $(seq 50); do
        [ "$(grep -c 'ready$' "$OUT")" -ge "$n" ] && return 0
        sleep 0.1
    done
    return 1
}

test_sigterm() {
    start_bg 2 -- sh -c 'trap "echo term-$KCCL_RANK; exit 7" TERM; echo ready
                         while :; do sleep 0.1; done'
    kill -TERM "$BG"
    wait "$BG"
    RC=$?
    check "SIGTERM reaches every rank" "want [0] term-0 and [1] term-1" \
        eval 'has "$OUT" "[0] term-0" && has "$OUT" "[1] term-1"'
    check "SIGTERM: rank status propagates" "rc=$RC, want 7" [ "$RC" = 7 ]
    check "SIGTERM: secret dir removed" "left in $TMPDIR" no_secret_dir
    check "SIGTERM: no rank left behind" "tagged processes remain" no_leftovers
}

test_launcher_killed() {
    start_bg 2 -- sh -c 'echo ready; exec sleep 30'
    kill -KILL "$BG"
    wait "$BG" 2>/dev/null
    check "SIGKILLed launcher leaves no orphan (PDEATHSIG)" "tagged processes remain" no_leftovers
    rm -rf "${TMPDIR:?}"/kccl-run.* # nothing can clean up after SIGKILL
}

test_timeout() {
    run_kr -n 2 --timeout 1 --grace 0.5 -- sh -c 'trap "" TERM; exec sleep 30'
    check "--timeout: exit 124" "rc=$RC" [ "$RC" = 124 ]
    check "--timeout: says so" "no 'timed out' message" grep -q "kccl-run: timed out after 1 s" "$ERR"
    check "--timeout: SIGKILL after the grace period" "took $MS ms" \
        eval '[ $MS -ge 1400 ] && [ $MS -lt 4000 ]'
    check "--timeout: no rank left behind" "tagged processes remain" no_leftovers
    check "--timeout: secret dir removed" "left in $TMPDIR" no_secret_dir
}

test_usage() {
    run_kr
    check "usage: no -n" "rc=$RC" eval '[ $RC = 2 ] && grep -q "missing -n" "$ERR"'
    run_kr -n 0 true
    check "usage: -n 0" "rc=$RC" eval '[ $RC = 2 ] && grep -q "from 1 to 65536" "$ERR"'
    run_kr -n 2
    check "usage: no program" "rc=$RC" eval '[ $RC = 2 ] && grep -q "no program" "$ERR"'
    run_kr -n 2 --bogus true
    check "usage: unknown option" "rc=$RC" eval '[ $RC = 2 ] && grep -q "bogus" "$ERR"'
    run_kr -n 2 --timeout x true
    check "usage: bad --timeout" "rc=$RC" eval '[ $RC = 2 ] && grep -q "timeout" "$ERR"'
    run_kr -n 2 ./no-such-program-here
    check "missing program: 127" "rc=$RC" [ "$RC" = 127 ]
    run_kr --help
    check "--help" "rc=$RC" eval '[ $RC = 0 ] && grep -q "usage:" "$OUT"'
}

test_secret_not_printed() {
    local hex=$WORK/secret.hex
    KCCL_LOG_LEVEL=trace run_kr -n 2 -- sh -c '[ $KCCL_RANK = 0 ] && od -An -tx1 "$KCCL_GROUP_SECRET_FILE" |
                          tr -d " \n" >'"$hex"'; echo done'
    check "secret never printed" "secret hex found in output" \
        eval '[ -s "$hex" ] && ! grep -qi "$(cat "$hex")" "$OUT" "$ERR"'
}

test_prefix
test_env
test_exit_code
test_killed_rank
test_sigterm
test_launcher_killed
test_timeout
test_usage
test_secret_not_printed

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]

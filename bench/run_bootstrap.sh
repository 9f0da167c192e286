#!/usr/bin/env bash
# run_bootstrap.sh - the standard bootstrap benchmark set (BENCHMARKS.md, "Bootstrap").
#
# Usage: bench/run_bootstrap.sh OUTDIR
#
# Runs kccl-bench-bootstrap for N = 4, 8, 16, 64, 256, 1024 ranks on all the cpus this
# process may use (1,024 with -i 21 -w 1), skipping sizes above MAX_RANKS_PER_CPU ranks per
# cpu, then 4 and 8 ranks pinned to two cpus (the "pinned to 2 cores" rows). Each run leaves
# OUTDIR/bootstrap_<tag>.json and .log; a summary table comes last. Exit status 1 when any
# run failed or was skipped for an error.
#
# Environment (all optional):
#   KCCL_BENCH_BOOTSTRAP  the binary (default: next to this script, build/bench/, or PATH)
#   RANKS                 sizes on all cpus (default "4 8 16 64 256 1024")
#   PINNED_RANKS          sizes pinned to two cpus (default "4 8"; empty to skip)
#   PINNED_CPUS           the two cpus (default: the first two this process may use)
#   MAX_RANKS_PER_CPU     skip sizes above this many ranks per cpu (default 64)
#   ITERS                 iterations per run below 1,024 ranks (default 101)
#   TIMEOUT               --timeout per run, seconds (default 600)
#   LABEL                 prefix of every run's label (default: the host name)
#   SETTLE_TW             before each run, wait until at most this many TCP sockets are in
#                         TIME_WAIT (default 5000; each bootstrap leaves one per connection for
#                         60 s, and a crowded port range slows the next run down)
#   SETTLE_MAX            the longest wait for that, seconds (default 75; 0 skips the wait)
#   KCCL_SOCKET_IFNAME, KCCL_BOOTSTRAP_TIMEOUT, ... pass through to the benchmark.
set -u -o pipefail
export LC_ALL=C

die() { echo "run_bootstrap.sh: $*" >&2; exit 2; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
outdir=$1
mkdir -p "$outdir" || die "cannot create $outdir"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
find_bench() {
    local c
    for c in "${KCCL_BENCH_BOOTSTRAP:-}" "$here/kccl-bench-bootstrap" \
        "$here/../build/bench/kccl-bench-bootstrap" "$(command -v kccl-bench-bootstrap || true)"; do
        if [ -n "$c" ] && [ -x "$c" ]; then
            echo "$c"
            return 0
        fi
    done
    return 1
}
bench=$(find_bench) || die "kccl-bench-bootstrap not found; build it or set KCCL_BENCH_BOOTSTRAP"

# The cpus this process may use, as a list of numbers ("0-3,8" -> 0 1 2 3 8).
allowed_cpus() {
    local list part
    list=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status)
    [ -n "$list" ] || list="0-$(($(nproc) - 1))"
    IFS=, read -ra parts <<<"$list"
    for part in "${parts[@]}"; do
        if [[ $part == *-* ]]; then seq "${part%-*}" "${part#*-}"; else echo "$part"; fi
    done
}
mapfile -t cpus < <(allowed_cpus)
ncpus=${#cpus[@]}
[ "$ncpus" -ge 1 ] || die "cannot tell which cpus are usable"

ranks=${RANKS-4 8 16 64 256 1024}
pinned_ranks=${PINNED_RANKS-4 8}
pinned_cpus=${PINNED_CPUS:-}
if [ -z "$pinned_cpus" ] && [ "$ncpus" -ge 2 ]; then pinned_cpus="${cpus[0]},${cpus[1]}"; fi
max_per_cpu=${MAX_RANKS_PER_CPU:-64}
iters=${ITERS:-101}
timeout=${TIMEOUT:-600}
label=${LABEL:-$(hostname)}
settle_tw=${SETTLE_TW:-5000}
settle_max=${SETTLE_MAX:-75}

status=0
tags=()
skipped=()

time_wait() { awk '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "tw") print $(i + 1) }' \
    /proc/net/sockstat 2>/dev/null; }

# Lets the TIME_WAIT sockets of the previous run expire, so each row starts alike.
settle() {
    local waited=0 tw
    tw=$(time_wait)
    [ -n "$tw" ] || return 0
    while [ "$tw" -gt "$settle_tw" ] && [ "$waited" -lt "$settle_max" ]; do
        [ "$waited" -eq 0 ] && echo "   waiting for $tw TIME_WAIT sockets to expire" >&2
        sleep 5
        waited=$((waited + 5))
        tw=$(time_wait)
    done
}

# run TAG LABEL ARGS... : one benchmark run, its JSON and log in OUTDIR.
run() {
    local tag=$1 what=$2
    shift 2
    settle
    local json="$outdir/bootstrap_$tag.json" log="$outdir/bootstrap_$tag.log"
    echo "== $tag: $bench $* --timeout $timeout" >&2
    rm -f "$json"
    "$bench" "$@" --timeout "$timeout" --json "$json" --label "$label, $what" >"$log" 2>&1
    local rc=$?
    grep -v '^#' "$log" | tail -n 2 >&2
    [ $rc -eq 0 ] || { echo "   exit status $rc; see $log" >&2; status=1; }
    tags+=("$tag")
}

for n in $ranks; do
    if [ "$n" -gt $((max_per_cpu * ncpus)) ]; then
        skipped+=("$n ranks (more than $max_per_cpu per cpu on $ncpus cpus)")
        continue
    fi
    if [ "$n" -ge 1024 ]; then
        run "n$n" "$ncpus cpus" -n "$n" -i 21 -w 1
    else
        run "n$n" "$ncpus cpus" -n "$n" -i "$iters" -w 1
    fi
done
for n in $pinned_ranks; do
    [ -n "$pinned_cpus" ] || { skipped+=("pinned runs (fewer than 2 cpus)"); break; }
    run "n${n}_pinned2" "pinned to cpus $pinned_cpus" -n "$n" -i "$iters" -w 1 --cpus "$pinned_cpus"
done

# json_field FILE KEY: a top-level scalar of the benchmark's JSON (one key per line).
json_field() {
    sed -n "s/^  \"$2\": \\(.*\\),\$/\\1/p" "$1" | head -n 1
}
# ms FILE KEY: a figure with three decimals, or "-" when there is none.
ms() {
    local v
    v=$(json_field "$1" "$2")
    if [ -z "$v" ] || [ "$v" = null ]; then echo -; else printf '%.3f' "$v"; fi
}

echo
echo "# kccl bootstrap, $(hostname), $ncpus cpus, $(date -u +%Y-%m-%dT%H:%M:%SZ); results in $outdir"
printf '%-14s %5s %5s %9s %10s %9s %9s %9s %9s\n' run ranks iters min_ms median_ms mean_ms \
    p99_ms max_ms failures
for tag in "${tags[@]}"; do
    f="$outdir/bootstrap_$tag.json"
    if [ ! -s "$f" ]; then
        printf '%-14s %s\n' "$tag" "no result (see bootstrap_$tag.log)"
        continue
    fi
    printf '%-14s %5s %5s %9s %10s %9s %9s %9s %9s' "$tag" "$(json_field "$f" ranks)" \
        "$(json_field "$f" iterations)" "$(ms "$f" min_ms)" "$(ms "$f" median_ms)" \
        "$(ms "$f" mean_ms)" "$(ms "$f" p99_ms)" "$(ms "$f" max_ms)" "$(json_field "$f" failures)"
    [ "$(json_field "$f" complete)" = true ] && echo || echo "  (incomplete)"
done
for s in "${skipped[@]}"; do echo "skipped: $s"; done
exit $status

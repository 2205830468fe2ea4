#!/bin/sh
# Runs casty's Savina-style benchmarks and prints a summary table.
#
#   tools/run-bench.sh [DIR [BENCH...]]
#
# DIR holds the built benchmark programs (default build/bench; `make bench`
# passes it). With BENCH names, only those run. Every benchmark runs once with
# --workers 1 and once with all online CPUs (`nproc`; once only when that is
# 1). Each RESULT line is printed as it comes, then a table, then the
# cache-line round trip between CPUs before and after the runs (bench/corelat).
#
# The default sizes take about two minutes in all on a 2-core machine.
# BENCH_SIZES=quick runs tiny sizes (a smoke test, a few seconds).
# BENCH_RUN_TIMEOUT (seconds, default 120) bounds each program run; the
# program itself gives up 10 s earlier (BENCH_TIMEOUT_S) and says why.
#
# Exits 1 when any benchmark fails (non-zero exit, timeout, or no RESULT
# line), after running the others; 2 on bad usage.
set -eu

DIR=${1:-build/bench}
[ $# -gt 0 ] && shift
TIMEOUT=${BENCH_RUN_TIMEOUT:-120}
# A program gives up a little earlier by itself, printing the system's
# counters, before timeout(1) kills it.
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-$((TIMEOUT > 20 ? TIMEOUT - 10 : TIMEOUT))}
export BENCH_TIMEOUT_S

if [ ! -d "$DIR" ]; then
    echo "usage: $0 [DIR [BENCH...]]  (no directory '$DIR'; run 'make benches')" >&2
    exit 2
fi

# name and positional arguments, one benchmark a line.
if [ "${BENCH_SIZES:-}" = quick ]; then
    SUITE='pingpong 20000
count 100000
mailbox 4 20000
threadring 100 20000
fjthrput 1000 10
fjcreate 10000
fib 15
big 500 50
ask 2000
persist 0 100 100
persist 1 100 100'
else
    SUITE='pingpong 100000000
count 250000000
mailbox 4 50000000
threadring 1000 250000000
fjthrput 150000 100
fjcreate 1000000
fib 30
big 100000 500
ask 200000
persist 0 10000 100
persist 1 10000 100'
fi

for b in "$@"; do
    if ! echo "$SUITE" | grep -q "^$b "; then
        echo "run-bench: unknown benchmark '$b'" >&2
        exit 2
    fi
done

ALL=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
WORKER_SETS=1
[ "$ALL" -gt 1 ] && WORKER_SETS="1 $ALL"

RESULTS=$(mktemp)
OUT=$(mktemp)
PROBES=$(mktemp)
trap 'rm -f "$RESULTS" "$OUT" "$PROBES"' EXIT INT TERM
failed=0

wanted() {
    [ $# -le 1 ] && return 0
    b=$1
    shift
    for w in "$@"; do
        [ "$w" = "$b" ] && return 0
    done
    return 1
}

# The cache-line round trip between CPUs (bench/corelat.c), before and after
# the runs: on a virtual machine it moves when the host moves the virtual
# CPUs, and every number at more than one worker with it.
probe() {
    [ "$ALL" -gt 1 ] || return 0
    ns=$("$(dirname "$0")/core-rtt.sh" "$DIR")
    [ -z "$ns" ] || echo "cache-line round trip between CPUs ($1): $ns ns" >>"$PROBES"
}
probe before

for workers in $WORKER_SETS; do
    echo "$SUITE" | while read -r name args; do
        wanted "$name" "$@" || continue
        prog="$DIR/$name"
        if [ ! -x "$prog" ]; then
            echo "FAIL $name: $prog not built" >&2
            echo "FAIL" >>"$RESULTS"
            continue
        fi
        # shellcheck disable=SC2086  # $args is a list of numbers
        if timeout "$TIMEOUT" "$prog" $args --workers "$workers" >"$OUT" </dev/null; then
            rc=0
        else
            rc=$?
        fi
        cat "$OUT"
        if [ "$rc" -ne 0 ] || ! grep -q '^RESULT ' "$OUT"; then
            [ "$rc" -eq 124 ] && why="timed out after ${TIMEOUT}s" || why="exit status $rc"
            echo "FAIL $name $args --workers $workers: $why" >&2
            echo "FAIL" >>"$RESULTS"
        fi
        grep '^RESULT ' "$OUT" >>"$RESULTS" || true
    done
done

grep -q '^FAIL' "$RESULTS" && failed=1
probe after

echo
awk '
/^RESULT / {
    for (i = 2; i <= NF; i++) {
        k = substr($i, 1, index($i, "=") - 1)
        v[k] = substr($i, index($i, "=") + 1)
    }
    printf "%-11s %-20s %7s %14s %10.1f\n", v["bench"], v["params"], v["workers"],
           v["msgs_per_sec"], v["maxrss_kb"] / 1024
    next
}
BEGIN {
    printf "%-11s %-20s %7s %14s %10s\n", "bench", "params", "workers", "msgs/s", "maxrss MB"
    printf "%-11s %-20s %7s %14s %10s\n", "-----", "------", "-------", "------", "---------"
}' "$RESULTS"
cat "$PROBES"

if [ "$failed" -ne 0 ]; then
    echo "run-bench: some benchmarks FAILED (see above)" >&2
    exit 1
fi

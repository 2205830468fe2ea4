#!/bin/bash
# Alternating comparison of builds: runs each benchmark at each worker count
# for every build in turn, PASSES times (even passes in reverse benchmark
# order), so that a machine's drift hits every build alike. This is how the
# 16-core results in bench/results/2026-11-26-xeon16*.log were taken.
#
#   tools/bench-variants.sh BUILD...     e.g. new=build/bench old=/tmp/old/build/bench go
#
# Each BUILD is NAME=DIR, a folder of benchmark binaries (build/bench, or a
# copy of another commit's) and the name the output gives it, or `go` for
# the Go peer (GO_BENCH, default build/peers/go-bench; it has no `pairs`). Prints one line per run: `v=<build> rep=<pass> RESULT ...`, the
# benchmark's own RESULT line (or FAILED). Summarise with
# tools/bench-variants-table.py.
#
# Environment:
#   SPECS    benchmarks and arguments, one per line (default below)
#   WORKERS  worker counts (default "1 2 4 8 16")
#   PASSES   passes (default 3)
#   TIMEOUT  seconds per run (default 30)
set -u
if [ $# -eq 0 ]; then
    sed -n '2,20p' "$0" >&2
    exit 2
fi
for build in "$@"; do
    case $build in
    go) ;;
    ?*=?*) [ -d "${build#*=}" ] || { echo "bench-variants: no folder ${build#*=}" >&2; exit 2; } ;;
    *) echo "bench-variants: $build: want NAME=DIR or go" >&2; exit 2 ;;
    esac
done
SPECS=${SPECS:-"fjthrput 20000 100
fjcreate 1000000
fib 27
big 8000 500
mailbox 4 2000000
pairs 1024 10000
count 10000000
pingpong 2000000
threadring 1000 4000000"}
WORKERS=${WORKERS:-"1 2 4 8 16"}
PASSES=${PASSES:-3}
TIMEOUT=${TIMEOUT:-30}
GO_BENCH=${GO_BENCH:-build/peers/go-bench}

run_one() { # build pass name args...
    local build=$1 pass=$2 name=$3 cmd label
    shift 3
    if [ "$build" = go ]; then
        [ "$name" = pairs ] && return
        cmd="$GO_BENCH $name"
        label=go
    else
        cmd="${build#*=}/$name"
        label=${build%%=*}
    fi
    local r
    r=$(timeout "$TIMEOUT" $cmd "$@" 2>&1 | grep RESULT)
    echo "v=$label rep=$pass ${r:-FAILED $name $*}"
}

for pass in $(seq 1 "$PASSES"); do
    if [ $((pass % 2)) = 0 ]; then specs=$(echo "$SPECS" | tac); else specs=$SPECS; fi
    while read -r name args; do
        [ -n "$name" ] || continue
        for w in $WORKERS; do
            for build in "$@"; do
                # shellcheck disable=SC2086 # args are words
                run_one "$build" "$pass" "$name" $args --workers "$w"
            done
        done
    done <<<"$specs"
done

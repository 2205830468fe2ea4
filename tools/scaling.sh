#!/bin/sh
# Scaling harness: runs the parallel benchmarks (independent ping-pong pairs,
# fjthrput, big, fib's spawning tree) at 1, 2, 4, ... up to N workers (default: nproc) and prints
# throughput and parallel efficiency (msgs/s at w workers / (w * msgs/s at 1)).
#
#   tools/scaling.sh [DIR] [MAX_WORKERS]      (DIR default build/bench)
#
# Environment:
#   SCALING_SPECS     the benchmarks and their arguments, one per line
#                     (default below; larger sizes keep the runs at many
#                     workers long enough to time)
#   SCALING_RUNTIMES  "casty" (default) or "casty go": also runs the Go peer
#                     (bench/peers/go, built by `make bench-compare`) at the
#                     same worker counts, as GO_BENCH (default
#                     build/peers/go-bench); the peers have no `pairs`, so
#                     Go runs the others only
#
# On a 2-core machine this shows 1 and 2; run it on the machine you deploy on.
set -eu
DIR=${1:-build/bench}
MAX=${2:-$(nproc)}
# Sized so that a run at 16 workers still lasts a tenth of a second or more
# (about 15 s in all on 2 cores).
SPECS=${SCALING_SPECS:-"pairs 1024 50000
fjthrput 40000 256
big 40000 512
fib 32"}
RUNTIMES=${SCALING_RUNTIMES:-casty}
GO_BENCH=${GO_BENCH:-build/peers/go-bench}
rate() { sed -n 's/.*msgs_per_sec=\([0-9]*\).*/\1/p' | head -1; }
# The cache-line round trip between CPUs (bench/corelat.c), before and after:
# on a virtual machine it moves when the host moves the virtual CPUs, and
# every multi-worker number with it.
probe() {
    ns=$("$(dirname "$0")/core-rtt.sh" "$DIR")
    [ -z "$ns" ] || echo "cache-line round trip between CPUs ($1): $ns ns (median over CPU 0's pairs)"
}
probe before
printf '%-10s %-22s %-6s %8s %14s %10s\n' bench params lang workers msgs/s efficiency
echo "$SPECS" | while read -r name args; do
    [ -n "$name" ] || continue
    for rt in $RUNTIMES; do
        case $rt:$name in
        go:pairs) continue ;;
        casty:*) cmd="$DIR/$name" ;;
        go:*) cmd="$GO_BENCH $name" ;;
        *) echo "scaling: unknown runtime '$rt'" >&2; exit 2 ;;
        esac
        base=""
        w=1
        while [ "$w" -le "$MAX" ]; do
            # shellcheck disable=SC2086  # $cmd and $args are word lists
            r=$(timeout 300 $cmd $args --workers "$w" </dev/null | rate)
            [ -n "$r" ] || { echo "scaling: $rt $name failed at $w workers" >&2; exit 1; }
            [ -n "$base" ] || base=$r
            eff=$(awk -v r="$r" -v b="$base" -v w="$w" 'BEGIN { printf "%.2f", r / (b * w) }')
            printf '%-10s %-22s %-6s %8s %14s %10s\n' "$name" "$args" "$rt" "$w" "$r" "$eff"
            if [ "$w" -lt "$MAX" ] && [ $((w * 2)) -gt "$MAX" ]; then w=$MAX; else w=$((w * 2)); fi
        done
    done
done
probe after

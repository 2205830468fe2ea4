#!/bin/sh
# Scaling harness: runs the parallel benchmarks (independent ping-pong pairs,
# fjthrput, big) at 1, 2, 4, ... up to N workers (default: nproc) and prints
# throughput and parallel efficiency (msgs/s at w workers / (w * msgs/s at 1)).
#
#   tools/scaling.sh [DIR] [MAX_WORKERS]      (DIR default build/bench)
#
# On a 2-core machine this shows 1 and 2; run it on the machine you deploy on.
set -eu
DIR=${1:-build/bench}
MAX=${2:-$(nproc)}
rate() { sed -n 's/.*msgs_per_sec=\([0-9]*\).*/\1/p' | head -1; }
printf '%-10s %-22s %8s %14s %10s\n' bench params workers msgs/s efficiency
for spec in "pairs 256 20000" "fjthrput 20000 256" "big 20000 512"; do
    set -- $spec
    name=$1; shift
    base=""
    w=1
    while [ "$w" -le "$MAX" ]; do
        r=$(timeout 300 "$DIR/$name" "$@" --workers "$w" | rate)
        [ -n "$r" ] || { echo "scaling: $name failed at $w workers" >&2; exit 1; }
        [ -n "$base" ] || base=$r
        eff=$(awk -v r="$r" -v b="$base" -v w="$w" 'BEGIN { printf "%.2f", r / (b * w) }')
        printf '%-10s %-22s %8s %14s %10s\n' "$name" "$*" "$w" "$r" "$eff"
        if [ "$w" -lt "$MAX" ] && [ $((w * 2)) -gt "$MAX" ]; then w=$MAX; else w=$((w * 2)); fi
    done
done

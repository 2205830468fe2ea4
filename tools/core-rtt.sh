#!/bin/sh
# Prints the cache-line round trip between CPUs in ns (the median over the
# first CPU's pairs, bench/corelat.c), or nothing when DIR has no corelat or
# it cannot run (one CPU). Used by bench-compare, run-bench and scaling.
#
#   tools/core-rtt.sh DIR      (DIR: the built benchmarks, e.g. build/bench)
[ -x "$1/corelat" ] || exit 0
timeout 60 "$1/corelat" 20000 2>/dev/null | sed -n 's/^RESULT .* median_ns=\([0-9]*\) .*/\1/p'
exit 0

#!/bin/sh
# Runs one Erlang peer benchmark:
#   bench/peers/erlang/run.sh BENCH PARAMS... [--workers N] [--reps R]
# --workers N (N > 0) starts the VM with +S N:N (N schedulers, all online);
# 0 or none leaves the default (one per CPU). +P (the process limit, whose
# table costs memory up front) is raised to what fib and fjcreate can have
# alive at once. PEERS_EBIN names the compiled modules (default
# build/peers/erlang under the repository root; see build.sh).
set -eu
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
EBIN=${PEERS_EBIN:-$ROOT/build/peers/erlang}
workers=0
prev=
for a in "$@"; do
    [ "$prev" = --workers ] && workers=$a
    prev=$a
done
case $workers in
'' | *[!0-9]*) echo "run.sh: --workers needs a number, got '$workers'" >&2; exit 2 ;;
esac
sched=
[ "$workers" -gt 0 ] && sched="+S $workers:$workers"
procs=0
case ${1:-}:${2:-} in
fjcreate:[0-9]*) procs=$2 ;;
fib:[0-9]*) # 2*fib(N+1) - 1 calls
    a=0 b=1 i=0
    while [ "$i" -lt "$2" ]; do t=$((a + b)); a=$b; b=$t; i=$((i + 1)); done
    procs=$((2 * b)) ;;
esac
limit=262144 # the VM's default
[ "$procs" -gt $((limit - 1024)) ] && limit=$((procs + 1024))
# shellcheck disable=SC2086  # $sched is two words or none
exec erl -noinput -boot start_clean +P "$limit" $sched -pa "$EBIN" \
    -s peer_bench main -extra "$@"

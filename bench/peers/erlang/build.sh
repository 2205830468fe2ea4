#!/bin/sh
# Compiles the Erlang peer benchmarks: bench/peers/erlang/build.sh [OUTDIR]
# (default build/peers/erlang, relative to the repository root).
set -eu
cd "$(dirname "$0")/../../.."
OUT=${1:-build/peers/erlang}
mkdir -p "$OUT"
erlc -Werror -o "$OUT" bench/peers/erlang/*.erl

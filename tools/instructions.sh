#!/bin/sh
# Instructions per message: each benchmark at 1 worker under Valgrind
# (`valgrind --tool=callgrind`; Debian package `valgrind`), run at two sizes
# so that startup and shutdown cancel out:
#
#   instructions per message = (I(large) - I(small)) / (msgs(large) - msgs(small))
#
# Wall-clock rates on a shared 2-core VM move by 10-30% from run to run;
# this count repeats to a fraction of a percent, so it shows what a change
# to the send, receive, scheduling or spawn paths costs or saves before the
# noisy timing does. It counts instructions, not cycles: cache misses and
# cross-core traffic (anything at 2+ workers) do not show.
#
#   tools/instructions.sh [DIR]     (DIR default build/bench; `make instructions`)
#
# Environment:
#   INSTR_SPECS  one benchmark a line: NAME | LARGE ARGS | SMALL ARGS
set -eu
DIR=${1:-build/bench}
SPECS=${INSTR_SPECS:-"count | 1000000 | 100000
mailbox | 4 250000 | 4 25000
pingpong | 500000 | 50000
threadring | 100 1000000 | 100 100000
fjthrput | 4000 100 | 400 100
fjcreate | 100000 | 10000
fib | 22 | 17
big | 2000 100 | 200 100"}

if ! command -v valgrind >/dev/null 2>&1; then
    echo "instructions: valgrind not found (Debian: apt-get install valgrind)" >&2
    exit 2
fi

# run NAME ARGS: prints "instructions messages" of one run under callgrind.
run() {
    out=$(mktemp)
    log=$(valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$DIR/$1" $2 --workers 1 2>&1) || {
        echo "instructions: $1 $2 failed under valgrind:" >&2
        echo "$log" >&2
        rm -f "$out"
        exit 1
    }
    rm -f "$out"
    ir=$(echo "$log" | sed -n 's/.*I *refs: *\([0-9,]*\).*/\1/p' | tr -d ,)
    msgs=$(echo "$log" | sed -n 's/^RESULT .* msgs=\([0-9]*\) .*/\1/p')
    if [ -z "$ir" ] || [ -z "$msgs" ]; then
        echo "instructions: no count or RESULT line from $1 $2" >&2
        exit 1
    fi
    echo "$ir $msgs"
}

printf '%-11s %-14s %14s %12s %10s\n' bench "args (large)" instructions messages "instr/msg"
echo "$SPECS" | while IFS='|' read -r name large small; do
    name=$(echo "$name" | tr -d ' ')
    [ -n "$name" ] || continue
    set -- $(run "$name" "$large")
    ir_l=$1 msgs_l=$2
    set -- $(run "$name" "$small")
    ir_s=$1 msgs_s=$2
    per=$(awk -v a="$ir_l" -v b="$ir_s" -v m="$msgs_l" -v n="$msgs_s" \
        'BEGIN { if (m > n) printf "%.1f", (a - b) / (m - n); else print "-" }')
    printf '%-11s %-14s %14s %12s %10s\n' "$name" "$(echo $large)" "$ir_l" "$msgs_l" "$per"
done
echo "(1 worker; instructions of the whole process at the large size; instr/msg from the"
echo " difference between the two sizes; actors for fjcreate and fib)"

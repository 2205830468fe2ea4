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

# locked OUT BINARY: how many locked instructions (a lock prefix, or an
# xchg with memory, which locks implicitly) of BINARY's own code ran in
# the callgrind profile OUT (recorded with --dump-instr=yes
# --compress-pos=no --compress-strings=no). Each is a full barrier that
# costs ~20 cycles uncontended and far more when another core holds the
# line: a cost the instruction count does not show.
locked() {
    objdump -d --no-show-raw-insn "$2" | awk -v prof="$1" -v bin="$2" '
        /^ *[0-9a-f]+:\t(lock |xchg .*\()/ {
            a = $1; sub(":", "", a); sub(/^0+/, "", a); lockat[a] = 1
        }
        END {
            n = 0; ours = 0; skip = 0
            while ((getline line < prof) > 0) {
                if (line ~ /^ob=/) { ours = (substr(line, 4) == bin); continue }
                if (line ~ /^calls=/) { skip = 1; continue }
                if (line !~ /^0x/) continue
                if (skip) { skip = 0; continue }
                if (!ours) continue
                split(line, f, " ")
                a = substr(f[1], 3); sub(/^0+/, "", a)
                if (a in lockat) n += f[3]
            }
            print n
        }'
}

# run NAME ARGS: prints "instructions messages locked" of one run under
# callgrind.
run() {
    out=$(mktemp)
    log=$(valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=yes \
        --compress-pos=no --compress-strings=no "$DIR/$1" $2 --workers 1 2>&1) || {
        echo "instructions: $1 $2 failed under valgrind:" >&2
        echo "$log" >&2
        rm -f "$out"
        exit 1
    }
    lk=$(locked "$out" "$(realpath "$DIR/$1")")
    rm -f "$out"
    ir=$(echo "$log" | sed -n 's/.*I *refs: *\([0-9,]*\).*/\1/p' | tr -d ,)
    msgs=$(echo "$log" | sed -n 's/^RESULT .* msgs=\([0-9]*\) .*/\1/p')
    if [ -z "$ir" ] || [ -z "$msgs" ]; then
        echo "instructions: no count or RESULT line from $1 $2" >&2
        exit 1
    fi
    echo "$ir $msgs $lk"
}

printf '%-11s %-14s %14s %12s %10s %11s\n' bench "args (large)" instructions messages \
    "instr/msg" "locked/msg"
echo "$SPECS" | while IFS='|' read -r name large small; do
    name=$(echo "$name" | tr -d ' ')
    [ -n "$name" ] || continue
    set -- $(run "$name" "$large")
    ir_l=$1 msgs_l=$2 lk_l=$3
    set -- $(run "$name" "$small")
    ir_s=$1 msgs_s=$2 lk_s=$3
    per=$(awk -v a="$ir_l" -v b="$ir_s" -v m="$msgs_l" -v n="$msgs_s" \
        'BEGIN { if (m > n) printf "%.1f", (a - b) / (m - n); else print "-" }')
    lper=$(awk -v a="$lk_l" -v b="$lk_s" -v m="$msgs_l" -v n="$msgs_s" \
        'BEGIN { if (m > n) printf "%.2f", (a - b) / (m - n); else print "-" }')
    printf '%-11s %-14s %14s %12s %10s %11s\n' "$name" "$(echo $large)" "$ir_l" "$msgs_l" \
        "$per" "$lper"
done
echo "(1 worker; instructions of the whole process at the large size; instr/msg from the"
echo " difference between the two sizes; actors for fjcreate and fib; locked/msg: locked"
echo " instructions of the benchmark binary (casty and the benchmark, not libc) per message)"

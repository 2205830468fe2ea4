#!/bin/sh
# Runs the example programs in DIR (default build/examples) and compares each
# one's stdout with the output its top comment promises. An example fails when
# its output differs, it exits non-zero, or it runs longer than 20 seconds.
# Prints "examples: N passed, M failed"; exits 1 when any failed.
set -u

dir=${1:-build/examples}
passed=0
failed=0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# The expected stdout of each example (the dollar signs are literal).
# shellcheck disable=SC2016
expected() {
    case $1 in
    quickstart)    printf 'Hello, Alice!\nHello, Bob!\n' ;;
    bank_account)  printf 'Balance: 100\nWithdraw: insufficient funds (balance=100)\n' ;;
    request_reply) printf 'Balance: 100\n' ;;
    state_machine) printf 'Total: $100.00\nReceipt: 2 items, $100.00\n' ;;
    hierarchy)     printf '[alice] working on: implement login\n[bob] working on: write tests\nfound /manager/bob\n' ;;
    supervision)   printf 'Processed: hello\n' ;;
    timers)        printf 'tick 1\ntick 2\nscheduled after 250 ms\ntick 3\ntick cancelled after 3\n' ;;
    config)        printf 'system: shop, 2 workers\norders: mailbox 10000 backpressure, supervision one_for_one max 10 within 60s\nsensor-042: mailbox 100 drop_oldest, supervision one_for_one max 3 within 60s\nother: mailbox 1000 drop_new, supervision one_for_one max 3 within 60s\n' ;;
    event_sourcing) printf 'Balance: 1500, transactions: 2\nRecovered balance: 1500, transactions: 2\n' ;;
    event_stream)  printf 'started: casty://events@local/user/worker\nstopped: worker\ndead letter: Ping to worker\n' ;;
    esac
}

for name in quickstart bank_account request_reply state_machine hierarchy supervision event_stream timers config event_sourcing; do
    exe=$dir/$name
    if [ ! -x "$exe" ]; then
        echo "FAIL $name: $exe not found" >&2
        failed=$((failed + 1))
        continue
    fi
    expected "$name" >"$tmp/expected"
    timeout 20 "$exe" >"$tmp/actual" 2>"$tmp/stderr"
    rc=$?
    if [ "$rc" -ne 0 ]; then
        case $rc in
        124) why="timed out after 20s" ;;
        *) why="exit status $rc"
           [ "$rc" -gt 128 ] && why="$why (killed by signal $((rc - 128)))" ;;
        esac
        echo "FAIL $name: $why" >&2
        sed 's/^/  stderr: /' "$tmp/stderr" >&2
        failed=$((failed + 1))
    elif ! cmp -s "$tmp/expected" "$tmp/actual"; then
        echo "FAIL $name: unexpected output" >&2
        diff -u "$tmp/expected" "$tmp/actual" | sed 's/^/  /' >&2
        failed=$((failed + 1))
    else
        echo "ok   $name"
        passed=$((passed + 1))
    fi
done

# The file journal variant must survive a real process exit: the second
# run recovers what the first one persisted.
if [ -x "$dir/event_sourcing" ]; then
    jdir=$tmp/journal
    first=$(timeout 20 "$dir/event_sourcing" --file "$jdir" 2>"$tmp/stderr")
    second=$(timeout 20 "$dir/event_sourcing" --file "$jdir" 2>>"$tmp/stderr")
    if [ "$first" = "Balance: 1500, transactions: 2" ] &&
        [ "$second" = "Recovered balance: 1500, transactions: 2" ]; then
        echo "ok   event_sourcing --file (two processes)"
        passed=$((passed + 1))
    else
        echo "FAIL event_sourcing --file: got '$first' then '$second'" >&2
        sed 's/^/  stderr: /' "$tmp/stderr" >&2
        failed=$((failed + 1))
    fi
fi

# Remoting: two systems in one process, then two processes over loopback
# (the listener takes a free port and prints it; the other side connects).
if [ -x "$dir/remote_pingpong" ]; then
    if out=$(timeout 60 "$dir/remote_pingpong" --local --n 2000 2>"$tmp/stderr") &&
        printf '%s\n' "$out" | grep -q "^remote_pingpong: 2000 round trips in" &&
        printf '%s\n' "$out" | grep -q "^remote_pingpong: answered 2000 pings$"; then
        echo "ok   remote_pingpong --local"
        passed=$((passed + 1))
    else
        echo "FAIL remote_pingpong --local: got '$out'" >&2
        sed 's/^/  stderr: /' "$tmp/stderr" >&2
        failed=$((failed + 1))
    fi
    timeout 60 "$dir/remote_pingpong" --listen 127.0.0.1:0 --n 2000 >"$tmp/server" 2>"$tmp/stderr" &
    server=$!
    addr=""
    for _ in $(seq 1 200); do # up to 10 s for the listener to print its address
        addr=$(sed -n 's/^remote_pingpong: serving \/pong on //p' "$tmp/server")
        [ -n "$addr" ] && break
        kill -0 "$server" 2>/dev/null || break
        sleep 0.05
    done
    client=""
    [ -n "$addr" ] && client=$(timeout 60 "$dir/remote_pingpong" --connect "$addr" --n 2000 2>>"$tmp/stderr")
    wait "$server"
    src=$?
    if [ -n "$addr" ] && [ "$src" -eq 0 ] &&
        printf '%s\n' "$client" | grep -q "^remote_pingpong: 2000 round trips in" &&
        grep -q "^remote_pingpong: answered 2000 pings$" "$tmp/server"; then
        echo "ok   remote_pingpong --listen/--connect (two processes)"
        passed=$((passed + 1))
    else
        echo "FAIL remote_pingpong two processes: addr '$addr' server rc $src client '$client'" >&2
        sed 's/^/  server: /' "$tmp/server" >&2
        sed 's/^/  stderr: /' "$tmp/stderr" >&2
        failed=$((failed + 1))
    fi
fi

echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Compares casty's benchmarks with the same programs in Erlang and Go
# (bench/peers/): prints a table of medians and writes a CSV and an SVG plot.
#
#   tools/bench-compare.sh [BENCH...]
#
# It installs the peers' Debian packages when missing (erlang-base,
# golang-go, gnuplot-nox; with sudo when not root), builds the peers (Go into
# $BUILD/peers/go-bench, Erlang into $BUILD/peers/erlang/), then runs each
# benchmark (all nine, or the BENCH names given) for casty ($BUILD/bench/,
# built by `make benches`), Erlang and Go, at 1 worker and at all online CPUs
# (`nproc`; once only when that is 1), BENCH_REPS times (default 3). Within a
# repetition the runtimes alternate (casty, erlang, go, casty, ...), and the
# repetitions are whole passes over the suite, so drift on the machine hits
# every runtime alike. The default sizes take about 9 minutes on a 2-core
# machine; BENCH_SIZES=quick runs tiny ones (a smoke test of the script).
#
# Output: every RESULT line as it comes; then, per benchmark and worker
# count, the median msgs/s of each runtime, the ratio casty/peer (above 1:
# casty is faster) and each runtime's largest max RSS over the repetitions;
# the same in $RESULTS/<YYYY-MM-DD>.csv, and a bar chart of the medians (log
# scale) in $RESULTS/<YYYY-MM-DD>.svg. RESULTS defaults to bench/results.
# Rows at more than one worker also give the cache-line round trip between
# CPUs measured before each of their repetitions (bench/corelat; the range in
# the table, every value in the CSV's core_rtt_ns): on a virtual machine the
# host can move the virtual CPUs mid-run, and the multi-worker numbers move
# with it.
#
# Environment: BUILD (default build), RESULTS, BENCH_REPS, BENCH_SIZES,
# BENCH_RUN_TIMEOUT (seconds per program run, default 180; each program gives
# up 10 s earlier by itself, BENCH_TIMEOUT_S), BENCH_WORKERS (the worker
# counts, default "1 $(nproc)"), BENCH_RUNTIMES (default "casty erlang go";
# casty first), BENCH_PREBUILT=1 (install and build nothing: use the peers
# already in $BUILD/peers, e.g. copied to a machine without a package
# mirror; the plot is then skipped when gnuplot is missing).
#
# Exits 1 when a run fails (non-zero exit, timeout, or no RESULT line; the
# others still run and the table marks it), 2 on bad usage or a failed
# install or build.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
RESULTS=${RESULTS:-bench/results}
REPS=${BENCH_REPS:-3}
TIMEOUT=${BENCH_RUN_TIMEOUT:-180}
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-$((TIMEOUT > 20 ? TIMEOUT - 10 : TIMEOUT))}
export BENCH_TIMEOUT_S
RUNTIMES=${BENCH_RUNTIMES:-casty erlang go}
PREBUILT=${BENCH_PREBUILT:-0}
case " $RUNTIMES " in " casty "*) ;; *) echo "bench-compare: BENCH_RUNTIMES must start with casty" >&2; exit 2 ;; esac
for rt in $RUNTIMES; do
    case $rt in casty | erlang | go) ;; *) echo "bench-compare: unknown runtime '$rt'" >&2; exit 2 ;; esac
done
DATE=$(date +%F)

# name and positional arguments, one benchmark a line; the same for every
# runtime. Sized so that the slowest runtime takes a few seconds a run.
if [ "${BENCH_SIZES:-}" = quick ]; then
    SUITE='pingpong 20000
count 100000
mailbox 4 20000
threadring 100 20000
fjthrput 100 10
fjcreate 10000
fib 15
big 500 50
ask 2000'
else
    SUITE='pingpong 8000000
count 40000000
mailbox 4 8000000
threadring 1000 16000000
fjthrput 40000 100
fjcreate 1500000
fib 28
big 16000 500
ask 200000'
fi

if [ $# -gt 0 ]; then
    sel=
    for b in "$@"; do
        line=$(echo "$SUITE" | grep "^$b " || true)
        if [ -z "$line" ]; then
            echo "bench-compare: unknown benchmark '$b'" >&2
            exit 2
        fi
        sel+="$line"$'\n'
    done
    SUITE=${sel%$'\n'}
fi
case $REPS in '' | *[!0-9]* | 0) echo "bench-compare: BENCH_REPS must be >= 1" >&2; exit 2 ;; esac

# ---- the peers' toolchains -----------------------------------------------------
has_runtime() { case " $RUNTIMES " in *" $1 "*) return 0 ;; esac; return 1; }
missing=
if has_runtime erlang; then
    command -v erl >/dev/null 2>&1 && command -v erlc >/dev/null 2>&1 || missing+=" erlang-base"
fi
[ "$PREBUILT" = 1 ] || command -v go >/dev/null 2>&1 || ! has_runtime go || missing+=" golang-go"
[ "$PREBUILT" = 1 ] || command -v gnuplot >/dev/null 2>&1 || missing+=" gnuplot-nox"
if [ -n "$missing" ] && [ "$PREBUILT" = 1 ]; then
    echo "bench-compare: BENCH_PREBUILT=1 but missing:$missing" >&2
    exit 2
fi
if [ -n "$missing" ]; then
    echo "bench-compare: installing$missing" >&2
    SUDO=
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "bench-compare: not root and no sudo; install:$missing" >&2
            exit 2
        }
        SUDO=sudo
    fi
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 $SUDO apt-get update -qq || true
    # shellcheck disable=SC2086  # $missing is a list of package names
    timeout 900 $SUDO apt-get install -y -qq --no-install-recommends $missing >&2 || {
        echo "bench-compare: apt-get install$missing failed" >&2
        exit 2
    }
fi

# ---- build --------------------------------------------------------------------
for name in $(echo "$SUITE" | cut -d' ' -f1); do
    if [ ! -x "$BUILD/bench/$name" ]; then
        echo "bench-compare: $BUILD/bench/$name not built (run 'make benches')" >&2
        exit 2
    fi
done
mkdir -p "$BUILD/peers"
ABS_BUILD=$(cd "$BUILD" && pwd)
if [ "$PREBUILT" = 1 ]; then
    if { has_runtime go && [ ! -x "$BUILD/peers/go-bench" ]; } ||
        { has_runtime erlang && [ ! -d "$BUILD/peers/erlang" ]; }; then
        echo "bench-compare: BENCH_PREBUILT=1 but the peers are not in $BUILD/peers" >&2
        exit 2
    fi
else
    echo "bench-compare: building the Go and Erlang peers" >&2
    (
        cd bench/peers/go
        export GOCACHE="$ABS_BUILD/peers/go-cache" GOPATH="$ABS_BUILD/peers/go-path" \
            GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local GO111MODULE=on
        timeout 600 go build -o "$ABS_BUILD/peers/go-bench" .
    ) || { echo "bench-compare: go build failed" >&2; exit 2; }
    timeout 300 bench/peers/erlang/build.sh "$ABS_BUILD/peers/erlang" ||
        { echo "bench-compare: erlc failed" >&2; exit 2; }
fi
export PEERS_EBIN="$ABS_BUILD/peers/erlang"

# ---- runs ---------------------------------------------------------------------
ALL=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
WORKER_SETS=1
[ "$ALL" -gt 1 ] && WORKER_SETS="1 $ALL"
WORKER_SETS=${BENCH_WORKERS:-$WORKER_SETS}
for w in $WORKER_SETS; do
    case $w in '' | *[!0-9]* | 0) echo "bench-compare: BENCH_WORKERS must be counts >= 1" >&2; exit 2 ;; esac
done

RAW=$(mktemp)
OUT=$(mktemp)
PLOTDAT=$(mktemp)
trap 'rm -f "$RAW" "$OUT" "$PLOTDAT"' EXIT INT TERM
failed=0

run_one() { # runtime name workers args...
    local rt=$1 name=$2 w=$3
    shift 3
    case $rt in
    casty) timeout "$TIMEOUT" "$BUILD/bench/$name" "$@" --workers "$w" ;;
    erlang) timeout "$TIMEOUT" bench/peers/erlang/run.sh "$name" "$@" --workers "$w" ;;
    go) timeout "$TIMEOUT" "$BUILD/peers/go-bench" "$name" "$@" --workers "$w" ;;
    esac
}

# A suite line's arguments; "ARGS erlang: EARGS" gives Erlang smaller sizes
# where the same ones would take it minutes (the rates stay comparable:
# msgs/s, and the table names the sizes each runtime ran).
args_for() { # runtime rest-of-line
    case $1:$2 in
    erlang:*" erlang: "*) echo "${2#* erlang: }" ;;
    *) echo "${2%% erlang: *}" ;;
    esac
}

# The cache-line round trip between CPUs right before each benchmark at more
# than one worker (bench/corelat.c): on a virtual machine the host may move
# the virtual CPUs between cores that share a cache and cores that do not,
# which moves every multi-worker number (2x for `big` on the 2-core VMs); the
# table shows the range each row ran under.
probe() { # name workers
    [ "$2" -gt 1 ] || return 0
    local ns
    ns=$(tools/core-rtt.sh "$BUILD/bench")
    [ -n "$ns" ] && echo "PROBE $1 $2 $ns" >>"$RAW"
    return 0
}

start=$(date +%s)
for _ in $(seq 1 "$REPS"); do
    while read -r name rest; do
        for w in $WORKER_SETS; do
            probe "$name" "$w"
            for rt in $RUNTIMES; do
                rc=0
                # shellcheck disable=SC2046  # the arguments are a list of numbers
                run_one "$rt" "$name" "$w" $(args_for "$rt" "$rest") >"$OUT" </dev/null || rc=$?
                cat "$OUT"
                line=$(grep "^RESULT lang=$rt bench=$name .* workers=$w " "$OUT" | head -n1 || true)
                if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
                    [ "$rc" -eq 124 ] && why="timed out after ${TIMEOUT}s" || why="exit status $rc"
                    [ "$rc" -eq 0 ] && why="no matching RESULT line"
                    echo "FAIL $rt $name $(args_for "$rt" "$rest") --workers $w: $why" >&2
                    echo "FAIL $rt $name $w" >>"$RAW"
                    failed=1
                else
                    echo "$line" >>"$RAW"
                fi
            done
        done
    done <<<"$SUITE"
done
echo "bench-compare: $(($(date +%s) - start)) s of runs" >&2

# ---- medians: table, CSV, plot --------------------------------------------------
mkdir -p "$RESULTS"
CSV="$RESULTS/$DATE.csv"
SVG="$RESULTS/$DATE.svg"
SUITE_ORDER=$(echo "$SUITE" | cut -d' ' -f1 | tr '\n' ' ')

echo
awk -v order="$SUITE_ORDER" -v wsets="$WORKER_SETS" -v rts="$RUNTIMES" \
    -v csv="$CSV" -v dat="$PLOTDAT" -v date="$DATE" '
function median(list,    a, n, i, j, t) {
    n = split(list, a, ";")
    for (i = 2; i <= n; i++)                     # insertion sort, numeric
        for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
            t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
        }
    return n % 2 ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
}
function human(r) {
    return r >= 1e6 ? sprintf("%.2f M", r / 1e6) : r >= 1e3 ? sprintf("%.1f k", r / 1e3) : sprintf("%d", r)
}
/^FAIL / { fail[$2 SUBSEP $3 SUBSEP $4] = 1; next }
/^PROBE / {
    pk = $2 SUBSEP $3
    prev = (pk in probes) ? probes[pk] ";" : ""
    probes[pk] = prev $4
    if (!(pk in pmin) || $4 + 0 < pmin[pk]) pmin[pk] = $4 + 0
    if (!(pk in pmax) || $4 + 0 > pmax[pk]) pmax[pk] = $4 + 0
    next
}
/^RESULT / {
    delete v
    for (i = 2; i <= NF; i++)
        v[substr($i, 1, index($i, "=") - 1)] = substr($i, index($i, "=") + 1)
    k = v["lang"] SUBSEP v["bench"] SUBSEP v["workers"]
    prev = (k in runs) ? runs[k] ";" : ""   # not in one assignment: mawk creates runs[k] first
    runs[k] = prev v["msgs_per_sec"]
    if ((v["maxrss_kb"] + 0) > (rss[k] + 0)) rss[k] = v["maxrss_kb"]
    if (v["lang"] == "casty") params[v["bench"]] = v["params"]
    rparams[k] = v["params"]
}
END {
    nb = split(order, B, " "); nw = split(wsets, W, " "); nr = split(rts, R, " ")
    print "date,bench,params,workers,runtime,median_msgs_per_sec,runs_msgs_per_sec,max_rss_kb,casty_over_runtime,failed,core_rtt_ns" > csv
    printf "%-11s %-20s %3s |", "bench", "params", "w"
    for (r = 1; r <= nr; r++) printf " %10s", R[r] " msg/s"
    for (r = 2; r <= nr; r++) printf " %8s", "c/" substr(R[r], 1, 2)
    printf " | %s | %s\n", "max RSS MB (" rts ")", "rtt ns"
    for (b = 1; b <= nb; b++) for (w = 1; w <= nw; w++) {
        name = B[b]; wk = W[w]
        for (r = 1; r <= nr; r++) {
            k = R[r] SUBSEP name SUBSEP wk
            med[r] = (k in runs) ? median(runs[k]) : -1
        }
        printf "%-11s %-20s %3s |", name, params[name], wk
        for (r = 1; r <= nr; r++) printf " %10s", (med[r] >= 0 ? human(med[r]) : "FAIL")
        for (r = 2; r <= nr; r++)
            printf " %8s", ((med[1] > 0 && med[r] > 0) ? sprintf("%.2fx", med[1] / med[r]) : "-")
        printf " |"
        for (r = 1; r <= nr; r++) {
            k = R[r] SUBSEP name SUBSEP wk
            printf " %s%s", ((k in rss) ? sprintf("%.0f", rss[k] / 1024) : "-"), ((r < nr) ? " /" : "")
            printf "%s,%s,\"%s\",%s,%s,%s,%s,%s,%s,%d,%s\n", date, name, ((k in rparams) ? rparams[k] : params[name]), wk, R[r],
                ((med[r] >= 0) ? sprintf("%.0f", med[r]) : ""), ((k in runs) ? runs[k] : ""),
                ((k in rss) ? rss[k] : ""),
                ((med[1] > 0 && med[r] > 0) ? sprintf("%.3f", med[1] / med[r]) : ""),
                ((k in fail) ? 1 : 0), (((name SUBSEP wk) in probes) ? probes[name SUBSEP wk] : "") > csv
        }
        pk = name SUBSEP wk
        printf " | %s\n", (pk in probes) ? (pmin[pk] == pmax[pk] ? pmin[pk] : pmin[pk] "-" pmax[pk]) : "-"
        for (r = 2; r <= nr; r++) {
            k = R[r] SUBSEP name SUBSEP wk
            if ((k in rparams) && rparams[k] != params[name] && !((R[r] SUBSEP name) in noted)) {
                noted[R[r] SUBSEP name] = 1
                notes = notes sprintf("%s: %s ran %s (casty %s)\n", name, R[r], rparams[k], params[name])
            }
        }
        printf "\"%s %s\"", name, "w=" wk > dat
        for (r = 1; r <= nr; r++) printf " %s", ((med[r] > 0) ? sprintf("%.0f", med[r]) : "NaN") > dat
        printf "\n" > dat
    }
    printf "%s", notes
}' "$RAW"
echo
echo "c/xx: casty's median msgs/s over the peer's (above 1: casty is faster); $REPS repetitions each"
echo "rtt ns: cache-line round trip between CPUs before each repetition of a row (bench/corelat; range)"

# one bar series per runtime, in the order of the table's columns
PLOTCMD=
col=2
for rt in $RUNTIMES; do
    case $rt in casty) colour='#1f77b4' ;; erlang) colour='#d62728' ;; go) colour='#2ca02c' ;; esac
    if [ "$col" = 2 ]; then
        PLOTCMD="plot \"$PLOTDAT\" using 2:xtic(1) title \"$rt\" lc rgb \"$colour\""
    else
        PLOTCMD+=", \"\" using $col title \"$rt\" lc rgb \"$colour\""
    fi
    col=$((col + 1))
done
if ! command -v gnuplot >/dev/null 2>&1; then
    echo "bench-compare: no gnuplot here, no plot" >&2
    echo "wrote $CSV"
else
gnuplot <<EOF || { echo "bench-compare: gnuplot failed" >&2; failed=1; }
set terminal svg size 1200,600 dynamic font "sans,12" background "white"
set output "$SVG"
set title "$(echo "$RUNTIMES" | sed 's/ / vs /g'): median msgs/s ($DATE, $(nproc) CPUs, $REPS reps; fjcreate and fib: actors/s; ask: asks/s)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y
set yrange [1e4:*]
set format y "10^{%T}"
set ylabel "msgs/s (log scale)"
set grid ytics
set xtics rotate by -35 nomirror
set key top right
set datafile missing "NaN"
$PLOTCMD
EOF
echo "wrote $CSV and $SVG"
fi

if [ "$failed" -ne 0 ]; then
    echo "bench-compare: some runs FAILED (see above)" >&2
    exit 1
fi

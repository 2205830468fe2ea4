#!/usr/bin/env bash
# toml-test.sh [SUITE_DIR]: runs casty's TOML parser over the TOML 1.0
# conformance files of the toml-test suite (SUITE_DIR, default
# ../shared/toml-test from the repository root; the list is its
# files-toml-1.0.0). A valid/X.toml passes when build/tools/toml-decode
# exits 0 and prints JSON equal, as values, to valid/X.json (compared by
# build/tools/toml-json-compare); an invalid/X.toml passes when the decoder
# rejects it with exit status 1 (a crash, a signal or a timeout is a
# failure). Prints each failure and a summary line; exits 1 if any failed.
# Skips (exit 0) when the suite is absent. Build first: `make tools`.
# BUILD (default build) names the build directory.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
suite=${1:-$root/../shared/toml-test}
build=${BUILD:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
decode=$build/tools/toml-decode
compare=$build/tools/toml-json-compare
list=$suite/files-toml-1.0.0

if [ ! -f "$list" ]; then
    echo "toml-test: skipped (no ${1:-../shared/toml-test})"
    exit 0
fi
for bin in "$decode" "$compare"; do
    if [ ! -x "$bin" ]; then
        echo "toml-test: $bin missing (run make tools)" >&2
        exit 2
    fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
fail() {
    failed=$((failed + 1))
    echo "FAIL $1: $2"
}

while IFS= read -r file; do
    case $file in
    valid/*.toml)
        json=${file%.toml}.json
        timeout 10 "$decode" <"$suite/$file" >"$tmp/out" 2>"$tmp/err"
        rc=$?
        if [ $rc -ne 0 ]; then
            fail "$file" "rejected (exit $rc): $(head -c 300 "$tmp/err")"
        elif ! diff_msg=$("$compare" "$suite/$json" "$tmp/out" 2>&1); then
            fail "$file" "$diff_msg"
        else
            passed=$((passed + 1))
        fi
        ;;
    invalid/*.toml)
        timeout 10 "$decode" <"$suite/$file" >"$tmp/out" 2>"$tmp/err"
        rc=$?
        if [ $rc -eq 0 ]; then
            fail "$file" "accepted; printed $(head -c 200 "$tmp/out")"
        elif [ $rc -ne 1 ]; then
            fail "$file" "exit $rc (crash, signal or timeout): $(head -c 300 "$tmp/err")"
        else
            passed=$((passed + 1))
        fi
        ;;
    esac
done <"$list"

echo "toml-test: $passed passed, $failed failed (of $((passed + failed)))"
[ $failed -eq 0 ]

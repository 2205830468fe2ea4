#!/bin/sh
# Out-of-tree build through pkg-config. Installs casty into a temporary prefix
# (`make install PREFIX=<tmp> BUILD=<build dir>`, run from the repo root),
# builds tests/pkgconfig/prog.c in a temporary directory with exactly
# `cc prog.c $(pkg-config --cflags --libs casty)`, runs it against the
# installed libcasty.so, checks its output, and checks that libcasty.so
# exports only casty_* symbols. Removes the prefix afterwards.
#
# Usage: tests/pkgconfig_test.sh [BUILD_DIR]
#   BUILD_DIR is relative to the repo root; default $BUILD, else build.
# Prints "pkgconfig: PASS" or "pkgconfig: FAIL (<why>)"; exits 1 on failure.
set -u

root=$(cd "$(dirname "$0")/.." && pwd) || exit 1
build=${1:-${BUILD:-build}}
expected='casty 0.1.0: 2 + 3 = 5'

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# fail WHY [LOG]: shows LOG (if any) on stderr, then the verdict; exits 1.
fail() {
    if [ -n "${2:-}" ] && [ -s "$2" ]; then
        sed 's/^/  /' "$2" >&2
    fi
    echo "pkgconfig: FAIL ($1)"
    exit 1
}

prefix=$tmp/prefix
(cd "$root" && make install PREFIX="$prefix" BUILD="$build") >"$tmp/install.log" 2>&1 ||
    fail "make install PREFIX=$prefix BUILD=$build" "$tmp/install.log"

mkdir "$tmp/src" || fail "mkdir $tmp/src"
cp "$root/tests/pkgconfig/prog.c" "$tmp/src/" || fail "copy prog.c"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# shellcheck disable=SC2046 # pkg-config's output is meant to be word-split
(cd "$tmp/src" && cc prog.c $(pkg-config --cflags --libs casty)) >"$tmp/cc.log" 2>&1 ||
    fail "cc prog.c \$(pkg-config --cflags --libs casty)" "$tmp/cc.log"

LD_LIBRARY_PATH="$prefix/lib" timeout 20 "$tmp/src/a.out" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 0 ] || fail "prog exited with status $rc" "$tmp/err"
# The program must have run against the installed shared library.
LD_LIBRARY_PATH="$prefix/lib" ldd "$tmp/src/a.out" | grep -q "$prefix/lib/libcasty.so" ||
    fail "prog is not linked against $prefix/lib/libcasty.so"
printf '%s\n' "$expected" >"$tmp/expected"
cmp -s "$tmp/expected" "$tmp/out" || {
    diff -u "$tmp/expected" "$tmp/out" >"$tmp/diff"
    fail "unexpected output" "$tmp/diff"
}

# Exported symbols: every defined dynamic symbol is casty_*, apart from the
# version node (an absolute symbol named after the version script's node).
nm -D --defined-only "$prefix/lib/libcasty.so" >"$tmp/syms" 2>&1 ||
    fail "nm -D libcasty.so" "$tmp/syms"
awk '{ sub(/@.*/, "", $3) }
     !($2 == "A" && $3 ~ /^CASTY_[0-9.]+$/) && $3 !~ /^casty_/ { print $3 }' "$tmp/syms" >"$tmp/bad"
[ -s "$tmp/bad" ] && fail "libcasty.so exports non-casty symbols" "$tmp/bad"
grep -q ' casty_system_create' "$tmp/syms" || fail "libcasty.so does not export casty_system_create"

echo "pkgconfig: PASS"

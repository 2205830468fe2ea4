#!/bin/bash
# Packs benchmark builds of several commits into one folder, to carry to a
# machine that cannot build them (a lent many-core machine without the
# package mirror) and run there with tools/bench-variants.sh.
#
#   tools/pack-builds.sh OUT NAME=REV...      e.g. .dev old=ae40b5c new=.
#
# For each NAME=REV: REV `.` is the working tree's build/bench (built first);
# any other revision is checked out in a temporary git worktree and built
# there. OUT/NAME then holds that build's benchmark binaries. Also copied:
# the Go peer (build/peers/go-bench, if built: BENCH_SIZES=quick make
# bench-compare builds it), the shared libraries the binaries name (OUT/lib,
# not libc), tools/bench-variants.sh and its table script, and with PERF=1
# Debian's perf binary and its libraries (OUT/perf) for `perf record` there.
# Run there, from the repository root:
#   LD_LIBRARY_PATH=OUT/lib OUT/bench-variants.sh NAME=OUT/NAME ... go
# (with GO_BENCH=OUT/go-bench). Keep OUT out of git: .gitignore lists .dev.
set -eu
if [ $# -lt 2 ]; then
    sed -n '2,18p' "$0" >&2
    exit 2
fi
OUT=$1
shift
top=$(git rev-parse --show-toplevel)
mkdir -p "$OUT/lib"
for spec in "$@"; do
    name=${spec%%=*}
    rev=${spec#*=}
    if [ "$name" = "$spec" ] || [ -z "$name" ] || [ -z "$rev" ]; then
        echo "pack-builds: $spec: want NAME=REV" >&2
        exit 2
    fi
    if [ "$rev" = . ]; then
        make -C "$top" -s benches
        src=$top/build/bench
    else
        wt=$(mktemp -d /tmp/casty-pack.XXXXXX)
        git -C "$top" worktree add -q --detach "$wt" "$rev"
        make -C "$wt" -s benches
        src=$wt/build/bench
    fi
    rm -rf "${OUT:?}/$name"
    mkdir -p "$OUT/$name"
    find "$src" -maxdepth 1 -type f -perm -u+x -exec cp {} "$OUT/$name/" \;
    if [ "$rev" != . ]; then
        git -C "$top" worktree remove --force "$wt"
    fi
    echo "pack-builds: $name = $(git -C "$top" rev-parse --short "${rev/#./HEAD}") -> $OUT/$name"
done
first=$(find "$OUT" -mindepth 2 -maxdepth 2 -type f -name pingpong | head -1)
if [ -n "$first" ]; then
    ldd "$first" | awk '$3 ~ /^\// {print $3}' | grep -v '/libc\.so' | while read -r lib; do
        cp -L "$lib" "$OUT/lib/"
    done
fi
[ -x "$top/build/peers/go-bench" ] && cp "$top/build/peers/go-bench" "$OUT/"
cp "$top/tools/bench-variants.sh" "$top/tools/bench-variants-table.py" "$OUT/"
if [ "${PERF:-0}" = 1 ] && command -v perf >/dev/null; then
    mkdir -p "$OUT/perf"
    cp "$(command -v perf)" "$OUT/perf/"
    ldd "$(command -v perf)" | awk '$3 ~ /^\// {print $3}' |
        grep -Ev '/lib(c|m|gcc_s|stdc\+\+|z)\.so' | while read -r lib; do
        cp -L "$lib" "$OUT/perf/"
    done
fi
du -sh "$OUT"

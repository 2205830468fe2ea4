#!/usr/bin/env python3
"""Summarises tools/bench-variants.sh output: for each benchmark and build,
the median msgs/s (M) at each worker count, with every pass's figure in
brackets.

    tools/bench-variants-table.py LOG [BUILD...]

BUILDs (the `v=` names) default to the order they first appear in LOG."""
import collections
import re
import signal
import statistics
import sys

LINE = re.compile(r"v=(\S+) rep=(\d+) RESULT .*bench=(\S+) params=\S+ workers=(\d+) "
                  r".*msgs_per_sec=(\d+)")


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    runs = collections.defaultdict(list)
    benches, builds, workers = [], [], set()
    with open(argv[1], encoding="utf-8") as log:
        for line in log:
            m = LINE.search(line)
            if m is None:
                if "FAILED" in line:
                    print("failed:", line.strip())
                continue
            build, _, bench, w, rate = m.groups()
            runs[(bench, build, int(w))].append(int(rate) / 1e6)
            if bench not in benches:
                benches.append(bench)
            if build not in builds:
                builds.append(build)
            workers.add(int(w))
    builds = argv[2:] or builds
    counts = sorted(workers)
    print("%-11s %-6s %s" % ("bench", "build", "  ".join("w=%d" % w for w in counts)))
    for bench in benches:
        for build in builds:
            cells = []
            for w in counts:
                x = runs.get((bench, build, w))
                cells.append("%.2f[%s]" % (statistics.median(x), ",".join("%.1f" % y for y in x))
                             if x else "-")
            print("%-11s %-6s %s" % (bench, build, "  ".join(cells)))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends it quietly
    sys.exit(main(sys.argv))

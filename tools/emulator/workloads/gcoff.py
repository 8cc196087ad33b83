"""Workload: the application turns the collector off (as some libraries do) and makes cycles.

Some libraries call `gc.disable()` on import or around hot paths to avoid
pauses, and never turn it back on. From then on no cycle is ever freed unless
somebody calls `gc.collect()`. This workload disables the collector first
thing, then builds object graphs with back-references (a parsed-document
tree whose children point at their parent, as XML and JSON tree libraries
build), drops them, and checks every tick that the collector is still off:
an agent should collect within its rules and never turn the application's
collector back on behind its back (`found_enabled` counts ticks it was on).
Run it alone:

    python tools/emulator/workloads/gcoff.py --rate 5 --seconds 10

and with the agent:

    python -m agent run --profile device_profiles/emulator.ini -- \\
        tools/emulator/workloads/gcoff.py --rate 5 --seconds 10

It prints a progress line a second (not with --quiet), a summary line for
people, and, last, the same as one JSON object for the emulator: the common
fields (see tools/emulator/workloads/__init__.py) and trees, nodes,
garbage_mb, found_enabled.
"""

import argparse
import gc
import json
import os
import platform
import resource
import sys
import time


def rss_kb() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def summary(name: str, started: float, stats_before: list, **fields) -> str:
    """The final JSON line every workload prints: common fields, then its own."""
    after = gc.get_stats()
    out = {"workload": name, "seconds": round(time.monotonic() - started, 3),
           "peak_rss_kb": max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, rss_kb()),
           "rss_kb": rss_kb(),
           "gc_enabled": gc.isenabled(),
           "collections": [a["collections"] - b["collections"] for a, b in zip(after, stats_before)],
           "python": platform.python_version()}
    out.update(fields)
    return json.dumps(out, sort_keys=False)


def tree(depth: int, fanout: int, leaf_bytes: int, parent=None) -> dict:
    """A document tree: every node refers to its parent, so every tree is one big cycle."""
    node = {"parent": parent, "children": [], "text": None}
    if depth == 0:
        node["text"] = bytearray(leaf_bytes)
    else:
        for _ in range(fanout):
            node["children"].append(tree(depth - 1, fanout, leaf_bytes, node))
    return node


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=5.0, help="MB of cyclic garbage a second (default 5)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run")
    parser.add_argument("--depth", type=int, default=3, help="tree depth (default 3)")
    parser.add_argument("--fanout", type=int, default=4, help="children per node (default 4)")
    parser.add_argument("--leaf", type=int, default=1024, help="payload bytes per leaf (default 1024)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary lines")
    args = parser.parse_args(argv)
    gc.disable()                                   # what the library does, first thing
    leaves = args.fanout ** args.depth
    nodes_per_tree = sum(args.fanout ** d for d in range(args.depth + 1))
    trees_per_s = args.rate * 1024 * 1024 / (leaves * args.leaf)
    stats_before = gc.get_stats()
    start = time.monotonic()
    trees = found_enabled = peak = 0
    next_report = start
    while time.monotonic() - start < args.seconds:
        if gc.isenabled():
            found_enabled += 1
        elapsed = time.monotonic() - start
        while trees < elapsed * trees_per_s:
            tree(args.depth, args.fanout, args.leaf)   # built and dropped: cyclic garbage
            trees += 1
        peak = max(peak, rss_kb())
        if not args.quiet and time.monotonic() >= next_report:
            next_report += 1.0
            print("t=%4.1fs trees=%d rss=%dK gc=%s" % (time.monotonic() - start, trees, rss_kb(),
                                                      "on" if gc.isenabled() else "off"), flush=True)
        time.sleep(0.02)
    garbage_mb = trees * leaves * args.leaf / 2.0 ** 20
    print("gcoff: made %d trees (%.0f MB), collector %s at the end, peak RSS %dK"
          % (trees, garbage_mb, "on" if gc.isenabled() else "off", peak), flush=True)
    print(summary("gcoff", start, stats_before, trees=trees, nodes=trees * nodes_per_tree,
                  garbage_mb=round(garbage_mb, 1), found_enabled=found_enabled), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

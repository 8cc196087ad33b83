"""Workload: a real leak, memory no collection can give back.

A cache that is never pruned: every record (a dict with a `--block` byte
payload) stays reachable from a module-level list, so collections find
nothing to free and RSS grows steadily at `--rate`. An agent must see its
memory floor rise and report the leak (`leak_suspected` with its rate, see
docs/leaks.md) rather than collect again and again. `--garbage` adds cyclic
garbage on top, which collections do reclaim, so the two can be told apart.
Run it alone:

    python tools/emulator/workloads/leak.py --rate 1 --seconds 30

and with the agent:

    python -m agent run --profile device_profiles/emulator.ini -- \\
        tools/emulator/workloads/leak.py --rate 1 --seconds 30

It prints a progress line a second (not with --quiet), a summary line for
people, and, last, the same as one JSON object for the emulator: the common
fields (see tools/emulator/workloads/__init__.py) and records, leaked_mb,
garbage_mb, rss_start_kb, rss_growth_kb.
"""

import argparse
import gc
import json
import os
import platform
import resource
import sys
import time

CACHE = []    # the leak: appended to, never pruned


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1.0, help="MB leaked a second (default 1)")
    parser.add_argument("--garbage", type=float, default=0.0,
                        help="MB of cyclic garbage a second on top (default 0)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run")
    parser.add_argument("--block", type=int, default=4096, help="payload bytes per record")
    parser.add_argument("--quiet", action="store_true", help="print only the summary lines")
    args = parser.parse_args(argv)
    leak_per_s = args.rate * 1024 * 1024 / args.block
    garbage_per_s = args.garbage * 1024 * 1024 / args.block
    stats_before = gc.get_stats()
    rss_start = rss_kb()
    start = time.monotonic()
    garbage = peak = 0
    next_report = start
    while time.monotonic() - start < args.seconds:
        elapsed = time.monotonic() - start       # on schedule, however long a tick took
        while len(CACHE) < elapsed * leak_per_s:
            CACHE.append({"id": len(CACHE), "payload": bytearray(args.block), "at": time.time()})
        while garbage < elapsed * garbage_per_s:
            node = {"payload": bytearray(args.block), "peers": []}
            node["peers"].append(node)
            garbage += 1
        node = None
        peak = max(peak, rss_kb())
        if not args.quiet and time.monotonic() >= next_report:
            next_report += 1.0
            print("t=%4.1fs records=%d rss=%dK" % (time.monotonic() - start, len(CACHE), rss_kb()),
                  flush=True)
        time.sleep(0.02)
    leaked_mb = len(CACHE) * args.block / 2.0 ** 20
    end = rss_kb()
    print("leak: kept %d records (%.1f MB), RSS %dK -> %dK, peak %dK"
          % (len(CACHE), leaked_mb, rss_start, end, peak), flush=True)
    print(summary("leak", start, stats_before, records=len(CACHE), leaked_mb=round(leaked_mb, 1),
                  garbage_mb=round(garbage * args.block / 2.0 ** 20, 1), rss_start_kb=rss_start,
                  rss_growth_kb=end - rss_start), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

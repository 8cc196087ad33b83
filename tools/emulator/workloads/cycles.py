"""Workload: reference cycles at a set rate, the garbage CPython's automatic
collector counts by object and misjudges by size.

Each cycle is a small dict that refers to itself and holds a `--block` byte
payload, so a few hundred objects hold many megabytes. Run it alone:

    python tools/emulator/workloads/cycles.py --rate 20 --seconds 10 --gc-off

and with the agent:

    python -m agent run --profile device_profiles/emulator.ini -- \
        tools/emulator/workloads/cycles.py --rate 20 --seconds 10 --gc-off

It prints a progress line a second (not with --quiet), then a summary line
for people (`cycles: made N cycles (M MB), peak RSS NK`) and, last, the same
as one JSON object for the emulator (see tools/emulator/workloads/__init__.py).
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="MB of cyclic garbage a second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run")
    parser.add_argument("--block", type=int, default=16384, help="payload bytes per cycle")
    parser.add_argument("--gc-off", action="store_true",
                        help="call gc.disable() first, as some libraries do")
    parser.add_argument("--quiet", action="store_true", help="print only the summary lines")
    args = parser.parse_args(argv)
    if args.gc_off:
        gc.disable()
    per_tick = max(1, int(args.rate * 1024 * 1024 / args.block / 50))   # 50 ticks a second
    stats_before = gc.get_stats()
    start = time.monotonic()
    made = peak = 0
    next_report = start
    while time.monotonic() - start < args.seconds:
        for _ in range(per_tick):
            node = {"payload": bytearray(args.block), "peers": []}
            node["peers"].append(node)
            made += 1
        del node
        peak = max(peak, rss_kb())
        if not args.quiet and time.monotonic() >= next_report:
            next_report += 1.0
            print("t=%4.1fs cycles=%d rss=%dK" % (time.monotonic() - start, made, rss_kb()),
                  flush=True)
        time.sleep(0.02)
    print("cycles: made %d cycles (%.0f MB), peak RSS %dK" % (made, made * args.block / 2 ** 20, peak),
          flush=True)
    print(summary("cycles", start, stats_before, cycles=made,
                  garbage_mb=round(made * args.block / 2.0 ** 20, 1)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

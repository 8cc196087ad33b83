"""Workload: reference cycles at a set rate, the garbage CPython's automatic
collector counts by object and misjudges by size.

Each cycle is a small dict that refers to itself and holds a `--block` byte
payload, so a few hundred objects hold many megabytes. Run it alone:

    python tools/emulator/workloads/cycles.py --rate 20 --seconds 10 --gc-off

and with the agent:

    python -m agent run --profile device_profiles/emulator.ini -- \
        tools/emulator/workloads/cycles.py --rate 20 --seconds 10 --gc-off
"""

import argparse
import gc
import os
import sys
import time


def rss_kb() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="MB of cyclic garbage a second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run")
    parser.add_argument("--block", type=int, default=16384, help="payload bytes per cycle")
    parser.add_argument("--gc-off", action="store_true",
                        help="call gc.disable() first, as some libraries do")
    parser.add_argument("--quiet", action="store_true", help="print only the summary line")
    args = parser.parse_args(argv)
    if args.gc_off:
        gc.disable()
    per_tick = max(1, int(args.rate * 1024 * 1024 / args.block / 50))   # 50 ticks a second
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
